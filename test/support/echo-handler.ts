/** A handler module for test/local/lambda-api.test.ts: echoes its event, its environment and its process. */
export const handler = async (event: { fail?: string; waitMs?: number }) => {
  if (event.waitMs) await new Promise((resolve) => setTimeout(resolve, event.waitMs));
  if (event.fail) throw new TypeError(event.fail);
  return { event, greeting: process.env.GREETING, pid: process.pid };
};
