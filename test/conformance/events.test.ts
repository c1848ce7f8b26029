/**
 * Conformance, membership events over the WebSocket API (contract/asyncapi.json;
 * docs/running-nodes/wire-protocol.md, "The WebSocket API" and "Keeping the
 * list correct"; docs/running-nodes/wire-batching.md): who receives what, in
 * which order, with which revisions. Black-box over HTTP and WebSocket only.
 *
 * "Nothing else arrived" is asserted with a marker: a later change whose
 * event, once received, proves that every earlier event would have arrived too.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Api, ConnectRefused, Subscriber, isEvent, uid, type WireEvent } from './client.ts';
import { openTarget, type Target } from './target.ts';

let target: Target;
let api: Api;
let deliveryDeadline: number;
const subscribers: Subscriber[] = [];

beforeAll(async () => {
  target = await openTarget();
  api = new Api(target.httpUrl);
  // Generous: several times the delivery bound, never a performance assertion.
  deliveryDeadline = Math.max(10_000, 5 * target.deliveryMs);
});

afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close()));
  await target?.close();
});

async function subscribe(query: Record<string, string>): Promise<Subscriber> {
  const s = await Subscriber.open(target.wsUrl, query);
  subscribers.push(s);
  return s;
}

const summary = (events: WireEvent[]) => events.map((e) => `${e.type}:${e.node.nodeId}${e.reason ? `:${e.reason}` : ''}`);

describe('subscribe', () => {
  test('a subscriber receives NODE_REGISTERED with the node, the cluster revision and the time', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    const reply = await api.register(c, 'n1', { metadata: { zone: 'a' } });
    expect(reply.status).toBe(201);
    const event = await sub.waitForEvent('NODE_REGISTERED', 'n1', deliveryDeadline);
    expect(event).toMatchObject({ type: 'NODE_REGISTERED', clusterId: c, revision: reply.body.node.revision });
    expect(event.node).toMatchObject({ key: `${c}/n1`, status: 'UP', metadata: { zone: 'a' }, incarnation: reply.body.node.incarnation });
    expect(event.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(event.reason).toBeUndefined();
  });

  test('re-registering with different metadata is NODE_UPDATED; the same registration again is no event', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    await api.register(c, 'n1', { metadata: { v: '1' } });
    await sub.waitForEvent('NODE_REGISTERED', 'n1', deliveryDeadline);
    expect((await api.register(c, 'n1', { metadata: { v: '1' } })).status).toBe(200); // a renewal
    const updated = await api.register(c, 'n1', { metadata: { v: '2' } });
    expect(updated.status).toBe(200);
    const event = await sub.waitForEvent('NODE_UPDATED', 'n1', deliveryDeadline);
    expect(event.node.metadata).toEqual({ v: '2' });
    expect(event.revision).toBe(updated.body.node.revision);
    await api.register(c, 'marker');
    await sub.waitForEvent('NODE_REGISTERED', 'marker', deliveryDeadline);
    expect(summary(sub.events(c))).toEqual(['NODE_REGISTERED:n1', 'NODE_UPDATED:n1', 'NODE_REGISTERED:marker']);
  });

  test('deregistering is NODE_DOWN with reason deregistered', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    await api.register(c, 'n1');
    await api.deregister(c, 'n1');
    const event = await sub.waitForEvent('NODE_DOWN', 'n1', deliveryDeadline);
    expect(event.reason).toBe('deregistered');
    expect(event.node).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });

  test('keepalives produce no events', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    await api.register(c, 'n1', { leaseSeconds: 30 });
    for (let i = 0; i < 5; i++) expect((await api.keepalive(c, 'n1')).status).toBe(200);
    await api.deregister(c, 'n1');
    await sub.waitForEvent('NODE_DOWN', 'n1', deliveryDeadline);
    const events = sub.events(c);
    expect(summary(events)).toEqual(['NODE_REGISTERED:n1', 'NODE_DOWN:n1:deregistered']);
    // Not even a revision was spent on the keepalives.
    expect((events[1] as WireEvent).revision).toBe((events[0] as WireEvent).revision + 1);
  });

  test('subscribers of other clusters see nothing', async () => {
    const a = uid('a');
    const b = uid('b');
    const subA = await subscribe({ clusterId: a });
    const subB = await subscribe({ clusterId: b });
    await api.register(a, 'n1');
    await api.register(a, 'n1', { metadata: { changed: 'yes' } });
    await api.deregister(a, 'n1');
    await subA.waitForEvent('NODE_DOWN', 'n1', deliveryDeadline);
    await api.register(b, 'marker');
    await subB.waitForEvent('NODE_REGISTERED', 'marker', deliveryDeadline);
    expect(subB.messages.filter(isEvent).map((e) => `${e.clusterId}:${e.node.nodeId}`)).toEqual([`${b}:marker`]);
    expect(subA.events().every((e) => e.clusterId === a)).toBe(true);
  });

  test('subscribe and unsubscribe messages add and remove clusters of one connection; ping answers PONG', async () => {
    const c = uid('c');
    const d = uid('d');
    const sub = await subscribe({});
    expect(await sub.ask({ action: 'subscribe', clusterId: c }, 'SUBSCRIBED')).toEqual({ type: 'SUBSCRIBED', clusterId: c });
    expect(await sub.ask({ action: 'subscribe', clusterId: d }, 'SUBSCRIBED')).toEqual({ type: 'SUBSCRIBED', clusterId: d });
    await api.register(c, 'n1');
    await sub.waitForEvent('NODE_REGISTERED', 'n1', deliveryDeadline);
    expect(await sub.ask({ action: 'unsubscribe', clusterId: c }, 'UNSUBSCRIBED')).toEqual({ type: 'UNSUBSCRIBED', clusterId: c });
    await api.register(c, 'n2');
    await api.register(d, 'marker');
    await sub.waitForEvent('NODE_REGISTERED', 'marker', deliveryDeadline);
    expect(sub.events(c).map((e) => e.node.nodeId)).toEqual(['n1']);
    const pong = await sub.ask({ action: 'ping' }, 'PONG');
    expect(pong.type).toBe('PONG');
  });

  test('malformed and unknown client messages are answered with ERROR, and the connection stays usable', async () => {
    const sub = await subscribe({});
    const unknown = await sub.ask({ action: 'dance' }, 'ERROR');
    expect(unknown).toMatchObject({ type: 'ERROR', error: { code: 'NOT_FOUND' } });
    const from = sub.messages.length;
    sub.ws.send('{not json');
    const malformed = await sub.waitFor((m) => m.type === 'ERROR', deliveryDeadline, 'an ERROR reply', from);
    expect(malformed).toMatchObject({ type: 'ERROR', error: { code: 'VALIDATION_FAILED' } });
    const invalid = await sub.ask({ action: 'subscribe', clusterId: 'bad id!' }, 'SUBSCRIBED');
    expect(invalid).toMatchObject({ type: 'ERROR', error: { code: 'VALIDATION_FAILED' } });
    expect((await sub.ask({ action: 'ping' }, 'PONG')).type).toBe('PONG');
    expect(JSON.stringify(sub.messages)).not.toMatch(/\n\s+at |\.ts:\d+/);
  });

  test('a connection opened with ?clusterId= is subscribed when it opens, and gets no SUBSCRIBED for it', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    // The first message on the connection is the answer to our ping: nothing came for the connect.
    expect(await sub.ask({ action: 'ping' }, 'PONG')).toMatchObject({ type: 'PONG' });
    expect(sub.messages.map((m) => m.type)).toEqual(['PONG']);
    await api.register(c, 'n1');
    await sub.waitForEvent('NODE_REGISTERED', 'n1', deliveryDeadline);
    expect(sub.messages.map((m) => m.type)).toEqual(['PONG', 'NODE_REGISTERED']);
  });

  test('a connect query parameter the AsyncAPI document does not list refuses the upgrade', async () => {
    const c = uid('c');
    const queries: Record<string, string>[] = [{ clusterId: c, foo: '1' }, { foo: '1' }, { clusterId: c, status: 'all' }];
    for (const query of queries) {
      const refused = await Subscriber.open(target.wsUrl, query).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused, JSON.stringify(query)).toBeInstanceOf(ConnectRefused);
      if (target.local) {
        expect((refused as ConnectRefused).status, JSON.stringify(query)).toBe(400);
        expect((refused as ConnectRefused).body).toContain('VALIDATION_FAILED');
      }
    }
    // Every parameter it lists is taken.
    await api.register(c, 'n1', { incarnation: 7 });
    const bound = await subscribe({ clusterId: c, nodeId: 'n1', incarnation: '7', batch: 'false' });
    expect((await bound.ask({ action: 'ping' }, 'PONG')).type).toBe('PONG');
    await api.deregister(c, 'n1');
  });

  test('a subscription past the limit of 100 per connection is ERROR VALIDATION_FAILED and changes nothing', async () => {
    const prefix = uid('lim');
    const sub = await subscribe({ clusterId: `${prefix}-0` });
    // The connect's cluster is the first; 99 more fill the connection.
    for (let i = 1; i < 100; i++) {
      expect(await sub.ask({ action: 'subscribe', clusterId: `${prefix}-${i}` }, 'SUBSCRIBED')).toEqual({ type: 'SUBSCRIBED', clusterId: `${prefix}-${i}` });
    }
    const over = await sub.ask({ action: 'subscribe', clusterId: `${prefix}-100` }, 'SUBSCRIBED');
    expect(over).toMatchObject({ type: 'ERROR', error: { code: 'VALIDATION_FAILED' } });
    // Subscribing again to a cluster it holds is still fine at the limit.
    expect(await sub.ask({ action: 'subscribe', clusterId: `${prefix}-1` }, 'SUBSCRIBED')).toEqual({ type: 'SUBSCRIBED', clusterId: `${prefix}-1` });
    // The refused cluster's events do not arrive; the held ones' do.
    await api.register(`${prefix}-100`, 'n1');
    await api.register(`${prefix}-99`, 'marker');
    await sub.waitForEvent('NODE_REGISTERED', 'marker', deliveryDeadline);
    expect(sub.events(`${prefix}-100`)).toEqual([]);
  });

  test('a connection with an invalid clusterId is refused', async () => {
    for (const clusterId of ['not valid!', '..', '.']) {
      const refused = await Subscriber.open(target.wsUrl, { clusterId }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused, clusterId).toBeInstanceOf(ConnectRefused);
      if (target.local) expect((refused as ConnectRefused).status, clusterId).toBe(400);
    }
    const sub = await subscribe({});
    expect(await sub.ask({ action: 'subscribe', clusterId: '..' }, 'SUBSCRIBED')).toMatchObject({ type: 'ERROR', error: { code: 'VALIDATION_FAILED' } });
  });

  test('a connection opened with batch=true gets every event of its cluster, alone or in EVENTS batches, in revision order per node', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c, batch: 'true' });
    // Concurrent writes: the case in which a batching server has several events of the cluster at once.
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => api.register(c, n)));
    await api.deregister(c, 'a');
    await sub.waitForEvent('NODE_DOWN', 'a', deliveryDeadline);
    for (const n of ['b', 'c', 'd', 'e']) await sub.waitForEvent('NODE_REGISTERED', n, deliveryDeadline);
    const ofA = sub.events(c).filter((e) => e.node.nodeId === 'a');
    expect(ofA.map((e) => e.type)).toEqual(['NODE_REGISTERED', 'NODE_DOWN']);
    expect(ofA[0]!.revision).toBeLessThan(ofA[1]!.revision);
    // Every message, batched or not, was checked against the AsyncAPI document as it arrived.
  });

  test('on a batch=true connection a lone event comes as the single-event message, never as an EVENTS of one', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c, batch: 'true' });
    // One change at a time, each awaited: every fan-out has exactly one event of the cluster.
    for (const n of ['a', 'b', 'c']) {
      await api.register(c, n);
      await sub.waitForEvent('NODE_REGISTERED', n, deliveryDeadline);
    }
    expect(sub.batches).toBe(0);
    expect(sub.events(c).map((e) => e.node.nodeId)).toEqual(['a', 'b', 'c']);
  });
});

describe('ordering and revisions', () => {
  test('revisions strictly increase, one per event, for sequential operations', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    const revisions: number[] = [];
    revisions.push((await api.register(c, 'n1')).body.node.revision);
    revisions.push((await api.register(c, 'n2')).body.node.revision);
    revisions.push((await api.register(c, 'n1', { metadata: { v: '2' } })).body.node.revision);
    await api.deregister(c, 'n2');
    revisions.push((await api.register(c, 'n2')).body.node.revision);
    for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBeGreaterThan(revisions[i - 1] as number);

    await sub.waitFor((m) => isEvent(m) && m.type === 'NODE_REGISTERED' && m.node.nodeId === 'n2' && m.revision === revisions[3], deliveryDeadline, 'the last event');
    const events = sub.events(c);
    expect(summary(events)).toEqual(['NODE_REGISTERED:n1', 'NODE_REGISTERED:n2', 'NODE_UPDATED:n1', 'NODE_DOWN:n2:deregistered', 'NODE_REGISTERED:n2']);
    const eventRevisions = events.map((e) => e.revision);
    for (let i = 1; i < eventRevisions.length; i++) expect(eventRevisions[i]).toBe((eventRevisions[i - 1] as number) + 1);
    // The list reflects every change so far.
    expect((await api.list(c)).body.revision).toBeGreaterThanOrEqual(eventRevisions.at(-1) as number);
  });

  test('50 nodes registering at once: all listed, each exactly one NODE_REGISTERED, revisions a gap-free range', async () => {
    const c = uid('c');
    const sub = await subscribe({ clusterId: c });
    const ids = Array.from({ length: 50 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
    const replies = await Promise.all(ids.map((id) => api.register(c, id, { metadata: { i: id } })));
    expect(replies.map((r) => r.status)).toEqual(ids.map(() => 201));

    const list = await api.list(c);
    expect(list.body.nodes.map((n) => n.nodeId).sort()).toEqual(ids);
    expect(list.body.revision).toBeGreaterThanOrEqual(50);

    await sub.waitFor(() => new Set(sub.events(c).map((e) => e.node.nodeId)).size === 50, 5 * deliveryDeadline, 'all 50 events');
    // A marker proves nothing else (no duplicate) is still on its way.
    await api.register(c, 'marker');
    await sub.waitForEvent('NODE_REGISTERED', 'marker', deliveryDeadline);

    const events = sub.events(c).filter((e) => e.node.nodeId !== 'marker');
    expect(events).toHaveLength(50);
    expect(events.every((e) => e.type === 'NODE_REGISTERED')).toBe(true);
    expect(new Set(events.map((e) => e.node.nodeId)).size).toBe(50);
    const revisions = events.map((e) => e.revision).sort((x, y) => x - y);
    expect(new Set(revisions).size).toBe(50);
    expect((revisions.at(-1) as number) - (revisions[0] as number)).toBe(49);
    // Each event carries the revision its registration returned.
    const byNode = new Map(replies.map((r) => [r.body.node.nodeId, r.body.node.revision]));
    for (const e of events) expect(e.revision).toBe(byNode.get(e.node.nodeId));
  });
});
