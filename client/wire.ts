/**
 * Shape checks for what arrives from the server. The client trusts the
 * contract but not the network path (a proxy's HTML error page, a truncated
 * body): anything that fails these checks is treated as a bad response,
 * never cast and used.
 */
import type { MembershipEvent, Node, NodeList } from './types.ts';

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isNode(value: unknown): value is Node {
  return (
    isObject(value) &&
    typeof value.nodeId === 'string' &&
    typeof value.clusterId === 'string' &&
    (value.status === 'UP' || value.status === 'DOWN') &&
    Number.isSafeInteger(value.revision) &&
    typeof value.incarnation === 'number' &&
    typeof value.leaseSeconds === 'number' &&
    isObject(value.metadata)
  );
}

export function isNodeList(value: unknown): value is NodeList {
  return (
    isObject(value) &&
    typeof value.clusterId === 'string' &&
    Number.isSafeInteger(value.revision) &&
    Array.isArray(value.nodes) &&
    value.nodes.every(isNode)
  );
}

export function isMembershipEvent(value: unknown): value is MembershipEvent {
  return (
    isObject(value) &&
    (value.type === 'NODE_REGISTERED' || value.type === 'NODE_DOWN' || value.type === 'NODE_UPDATED') &&
    typeof value.clusterId === 'string' &&
    Number.isSafeInteger(value.revision) &&
    isNode(value.node)
  );
}
