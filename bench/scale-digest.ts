/**
 * A healthy list as one digest, so the `scale` scenario can compare
 * thousands of clients' cached lists with the server's without shipping
 * them: node ids and incarnations, in node-id order (the order the SDK's
 * cache and the bench sort them in).
 */
import { createHash } from 'node:crypto';
import type { Node } from '@roster/client';

export function listDigest(nodes: readonly Pick<Node, 'nodeId' | 'incarnation'>[]): string {
  const hash = createHash('sha1');
  for (const n of nodes) hash.update(`${n.nodeId}@${n.incarnation}\n`);
  return hash.digest('hex');
}
