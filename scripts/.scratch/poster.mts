import { measurePoster } from '../../bench/fanout.ts';
for (let i = 0; i < Number(process.argv[2] ?? 5); i++) console.log(JSON.stringify(await measurePoster(20_000)));
