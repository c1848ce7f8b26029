/**
 * One "node" on etcd for the bench's detection comparison, run as its own
 * process (so it can be SIGKILLed or SIGSTOPped like a `roster agent`):
 * grants a lease, puts its key under the cluster prefix with that lease, and
 * keeps the lease alive (the etcd3 client sends a keepalive every ttl/3).
 * Prints "ready" once the key is in place.
 *
 *   node --import tsx bench/etcd-node.ts <endpoint> <key> <ttlSeconds>
 */
import { Etcd3 } from 'etcd3';

const [endpoint, key, ttlText] = process.argv.slice(2);
const ttl = Number(ttlText);
if (!endpoint || !key || !Number.isInteger(ttl) || ttl < 1) {
  process.stderr.write('usage: etcd-node.ts <endpoint> <key> <ttlSeconds>\n');
  process.exit(2);
}
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]):\d+$/.test(endpoint)) {
  process.stderr.write(`etcd-node: loopback endpoints only, not ${endpoint}\n`);
  process.exit(2);
}

const client = new Etcd3({ hosts: endpoint });
const lease = client.lease(ttl);
lease.on('lost', (err) => {
  process.stderr.write(`etcd-node: lease lost: ${err.message}\n`);
  process.exit(1);
});
await lease.put(key).value('up');
process.stdout.write('ready\n');

const stop = () => {
  void lease
    .revoke()
    .catch(() => undefined)
    .finally(() => {
      client.close();
      process.exit(0);
    });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
