/** Plain-text output of the commands: lines on stdout, tables, metadata and times as people read them. */
export { table } from '../bench/table.ts';

export const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function metadataText(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export function ago(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return '-';
  if (seconds < 0) return `in ${-seconds}s`;
  return seconds < 120 ? `${seconds}s ago` : `${Math.round(seconds / 60)}m ago`;
}
