import { Queue, type QueueOptions } from 'bullmq';

/**
 * A BullMQ Queue that stays quiet about its connection's errors. A Queue re-emits every error of the
 * connection it was given, whose owner already listens (openRedis), and a producer learns of an outage
 * from the command that fails; without a listener BullMQ prints each one raw to stderr, between the
 * JSON log lines (each reconnect attempt during a partition, RELIABILITY.md Q5b).
 */
export function openQueue(name: string, options: QueueOptions): Queue {
  const queue = new Queue(name, options);
  queue.on('error', () => {});
  return queue;
}
