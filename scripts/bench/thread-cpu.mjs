#!/usr/bin/env node
// Which threads use the CPU, sampled every 100 ms from /proc (Linux only): a check beside
// `node scripts/bench-wllama.mjs` that no engine's threads keep running (spinning) while the other
// engine is timed. Prints one line per sample in which some thread of a process whose command name
// contains --match used at least --min ticks (1 tick = 10 ms of CPU on Linux), as
// `seconds thread-name:tid=ticks ...`; a Chromium page's main thread is "chromium" (its renderer's
// first thread), its Web Workers (wllama's worker and pthreads, webquant's pool) "DedicatedWorker".
//
//   node scripts/bench/thread-cpu.mjs [--match chrom] [--seconds 120] [--min 1] > trace.txt &
//   node scripts/bench-wllama.mjs --variants int4-a8 --threads 2 --repeats 3 --no-paired
import fs from 'node:fs';

import { parseFlags } from '../lib/args.mjs';

function parseArgs(argv) {
  const o = { match: 'chrom', seconds: 120, min: 1 };
  parseFlags(argv, {
    '--match': (v) => (o.match = v),
    '--seconds': (v) => (o.seconds = Number(v)),
    '--min': (v) => (o.min = Number(v)),
  });
  if (!(o.seconds > 0) || !Number.isInteger(o.min) || o.min < 1) throw new Error('--seconds must be > 0 and --min a whole number of ticks >= 1');
  return o;
}

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;  // the process or thread ended between listing and reading
  }
}

// Map "pid/tid" -> { name, ticks } (user + system time) for the matching processes' threads.
function sample(match) {
  const out = new Map();
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = read(`/proc/${pid}/comm`);
    if (comm === null || !comm.includes(match)) continue;
    let tids;
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const stat = read(`/proc/${pid}/task/${tid}/stat`);
      if (stat === null) continue;
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${pid}/${tid}`, { name, ticks: Number(fields[11]) + Number(fields[12]) });
    }
  }
  return out;
}

const o = parseArgs(process.argv.slice(2));
if (!fs.existsSync('/proc/self/task')) throw new Error('thread-cpu.mjs reads /proc: Linux only');
const t0 = performance.now();
let prev = sample(o.match);
const timer = setInterval(() => {
  const cur = sample(o.match);
  const busy = [];
  for (const [key, v] of cur) {
    const p = prev.get(key);
    if (p !== undefined && v.ticks - p.ticks >= o.min)
      busy.push(`${v.name}:${key.split('/')[1]}=${v.ticks - p.ticks}`);
  }
  const s = (performance.now() - t0) / 1000;
  if (busy.length > 0) console.log(`${s.toFixed(2)} ${busy.join(' ')}`);
  prev = cur;
  if (s >= o.seconds) clearInterval(timer);
}, 100);
