// The scripts' shared flag parser (scripts/lib/args.mjs): flags with a value, switches and
// positional arguments land where the table says, in order; an unknown flag, a flag missing its
// value and (without a positional handler) a bare argument fail with the message the scripts print;
// and one script (make-synthetic-smollm.mjs) rejects a bad flag through it before doing any work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ROOT } from './helpers/repo.js';

type Args = {
  parseFlags: (
    argv: string[],
    values: Record<string, (v: string) => void>,
    more?: { switches?: Record<string, () => void>; positional?: (a: string) => void },
  ) => void;
};
const { parseFlags } = (await import(pathToFileURL(path.join(ROOT, 'scripts/lib/args.mjs')).href)) as Args;
const run = promisify(execFile);

function parse(argv: string[], withPositional = false) {
  const o = { repeats: 3, variants: ['a'], json: false, files: [] as string[], seen: [] as string[] };
  parseFlags(
    argv,
    {
      '--repeats': (v) => {
        o.repeats = Number(v);
        o.seen.push('repeats');
      },
      '--variants': (v) => {
        o.variants = v.split(',');
        o.seen.push('variants');
      },
    },
    {
      switches: {
        '--json': () => {
          o.json = true;
          o.seen.push('json');
        },
      },
      ...(withPositional ? { positional: (a: string) => o.files.push(a) } : {}),
    },
  );
  return o;
}

test('parseFlags: values, switches and positionals land where the table says, in order', () => {
  assert.deepEqual(parse([]), { repeats: 3, variants: ['a'], json: false, files: [], seen: [] });
  const o = parse(['--json', '--repeats', '7', 'x.gguf', '--variants', 'int8,int4', '-y'], true);
  assert.equal(o.repeats, 7);
  assert.deepEqual(o.variants, ['int8', 'int4']);
  assert.equal(o.json, true);
  assert.deepEqual(o.files, ['x.gguf', '-y']);
  assert.deepEqual(o.seen, ['json', 'repeats', 'variants']);
  // A value that looks like a flag is still the value.
  assert.equal(parse(['--variants', '--json']).variants.join(), '--json');
  // Repeated flags: the last one wins, as the scripts did.
  assert.equal(parse(['--repeats', '1', '--repeats', '2']).repeats, 2);
});

test('parseFlags: unknown flags, missing values and unexpected bare arguments are errors', () => {
  assert.throws(() => parse(['--bogus']), /^Error: unknown argument --bogus$/);
  assert.throws(() => parse(['--json', '--repeats']), /^Error: --repeats needs a value$/);
  assert.throws(() => parse(['file.gguf']), /^Error: unknown argument file\.gguf$/);
  assert.throws(() => parse(['--bogus'], true), /^Error: unknown argument --bogus$/);
  // Inherited object keys are not flags.
  assert.throws(() => parse(['toString']), /unknown argument toString/);
  assert.throws(() => parse(['constructor', 'x']), /unknown argument constructor/);
});

test('parseFlags: a script rejects a bad flag before doing any work', async () => {
  const script = path.join(ROOT, 'scripts/make-synthetic-smollm.mjs');
  for (const [args, message] of [
    [['--bogus'], 'unknown argument --bogus'],
    [['--seed'], '--seed needs a value'],
  ] as const) {
    await assert.rejects(run(process.execPath, [script, ...args], { cwd: ROOT }), (e: Error & { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', new RegExp(message));
      return true;
    });
  }
});
