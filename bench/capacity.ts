/**
 * DynamoDB's own account of what an operation costs: a meter that asks every
 * request for `ReturnConsumedCapacity: INDEXES` and adds up the capacity
 * units DynamoDB reports, for the table and for each index. DynamoDB Local
 * reports them too (per index included), by the rules DynamoDB bills by; the
 * bench (`capacity` scenario) and the tests measure with it, and `roster cost`
 * prices the figures it measured (bench/units.ts).
 */
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Capacity units consumed, split into reads and writes, for the table and its indexes. */
export interface Capacity {
  /** Requests metered. */
  requests: number;
  tableReads: number;
  tableWrites: number;
  indexReads: number;
  indexWrites: number;
}

const READS = new Set(['GetItemCommand', 'GetCommand', 'QueryCommand', 'ScanCommand', 'BatchGetItemCommand', 'BatchGetCommand']);
const zero = (): Capacity => ({ requests: 0, tableReads: 0, tableWrites: 0, indexReads: 0, indexWrites: 0 });

export class CapacityMeter {
  private current = zero();

  /** Meters every request `client` sends from now on. */
  attach(client: DynamoDBDocumentClient): this {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { ReturnConsumedCapacity?: string };
        input.ReturnConsumedCapacity = 'INDEXES';
        const out = await next(args);
        const consumed = (out.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity;
        this.add(READS.has(context.commandName ?? '') ? 'read' : 'write', consumed);
        return out;
      },
      { step: 'initialize', name: 'rosterCapacityMeter', override: true },
    );
    return this;
  }

  private add(kind: 'read' | 'write', consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    this.current.requests++;
    for (const c of consumed === undefined ? [] : Array.isArray(consumed) ? consumed : [consumed]) {
      // With INDEXES, `Table` is the table's share and each index has its own; without it, only the total.
      const table = c.Table?.CapacityUnits ?? (c.GlobalSecondaryIndexes ? 0 : (c.CapacityUnits ?? 0));
      const indexes = Object.values(c.GlobalSecondaryIndexes ?? {}).reduce((sum, i) => sum + (i.CapacityUnits ?? 0), 0);
      if (kind === 'read') {
        this.current.tableReads += table;
        this.current.indexReads += indexes;
      } else {
        this.current.tableWrites += table;
        this.current.indexWrites += indexes;
      }
    }
  }

  /** What was consumed since the last `take()` (or since attaching), and starts counting afresh. */
  take(): Capacity {
    const taken = this.current;
    this.current = zero();
    return taken;
  }
}

/** Write units per operation: (table + index writes) / operations. */
export const writesPer = (c: Capacity, operations: number): number => (c.tableWrites + c.indexWrites) / Math.max(1, operations);
/** Read units per operation. */
export const readsPer = (c: Capacity, operations: number): number => (c.tableReads + c.indexReads) / Math.max(1, operations);
