/**
 * Node records and events as the wire contract shapes them, for the unit
 * tests of the revision rules (the SDK's cache, the console's table) and of
 * the lease.
 */
import type { MembershipEvent, Node } from '@roster/contract';

export const FIXTURE_TIME = '2025-01-01T00:00:00.000Z';

/** An UP node (`extra` may make it DOWN); a DOWN node without a reason gets `expired`. */
export function nodeRecord(clusterId: string, nodeId: string, revision: number, extra: Partial<Node> = {}): Node {
  const node: Node = {
    key: `${clusterId}/${nodeId}`,
    clusterId,
    nodeId,
    status: 'UP',
    metadata: {},
    leaseSeconds: 15,
    incarnation: 1,
    registeredAt: FIXTURE_TIME,
    lastKeepaliveAt: FIXTURE_TIME,
    expiresAt: '2025-01-01T00:00:15.000Z',
    revision,
    ...extra,
  };
  if (node.status === 'DOWN') node.downReason ??= 'expired';
  return node;
}

/** The event that produced `node`'s state: NODE_DOWN with its reason for a DOWN node, else `type`. */
export function eventOf(node: Node, type: MembershipEvent['type'] = node.status === 'DOWN' ? 'NODE_DOWN' : 'NODE_REGISTERED', at = FIXTURE_TIME): MembershipEvent {
  const event: MembershipEvent = { type, clusterId: node.clusterId, revision: node.revision, node, at };
  if (type === 'NODE_DOWN' && node.downReason) event.reason = node.downReason;
  return event;
}
