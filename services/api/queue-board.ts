import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type RequestHandler, type Router } from 'express';

// bull-board, the BullMQ web UI, at /admin/queues: browse, retry and clean jobs of every queue.
// It shows every tenant's jobs and can pause queues, so only operators reach it (the guard).

export const queueBoardPath = '/admin/queues';

export type QueueBoardOptions = {
  queues: readonly Queue[];
  /** Runs before the board: AdminSession.requireOperator. */
  guard: RequestHandler;
};

export function queueBoardRouter(options: QueueBoardOptions): Router {
  const adapter = new ExpressAdapter();
  adapter.setBasePath(queueBoardPath);
  createBullBoard({
    queues: options.queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'clipmod queues' } },
  });
  const router = express.Router();
  router.use(queueBoardPath, options.guard, adapter.getRouter() as RequestHandler);
  return router;
}
