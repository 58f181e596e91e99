// The sign-in form of the admin pages: plain HTML, no script, so it works under a strict CSP.

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/** `next`: where to go after signing in, already checked to be an admin path. */
export function adminLoginPage(next: string, sessionTtlSeconds: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clipmod admin — sign in</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; padding: 0 1rem; }
  label, input, button { display: block; width: 100%; box-sizing: border-box; }
  input { margin: 0.5rem 0 1rem; padding: 0.5rem; font: inherit; }
  button { padding: 0.5rem; font: inherit; }
</style>
</head>
<body>
<h1>clipmod admin</h1>
<form method="post" action="/admin/session">
  <label for="key">API key with the admin scope</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
  <input type="hidden" name="next" value="${escapeHtml(next)}">
  <button type="submit">Sign in</button>
</form>
<p>The key is exchanged for a session cookie that lasts ${Math.round(sessionTtlSeconds / 60)} minutes;
the key itself is not stored.</p>
</body>
</html>
`;
}
