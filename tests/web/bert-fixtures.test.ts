// The committed fixtures of the native BERT tests (tests/fixtures/bert) are exactly what the float64
// reference and the synthetic-repo writer produce today (so a change to either cannot leave them stale).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BERT_FIXTURE_DIR, BERT_FIXTURES, writeBertFixtures } from './helpers/bert-fixtures.js';

test('tests/fixtures/bert matches a fresh generation byte for byte', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'webquant-bert-fixtures-check-'));
  try {
    writeBertFixtures(dir);
    for (const f of BERT_FIXTURES) {
      const files = readdirSync(path.join(dir, f.name)).sort();
      assert.deepEqual(readdirSync(path.join(BERT_FIXTURE_DIR, f.name)).sort(), files, f.name);
      for (const file of files) {
        const fresh = readFileSync(path.join(dir, f.name, file));
        assert.ok(fresh.equals(readFileSync(path.join(BERT_FIXTURE_DIR, f.name, file))), `${f.name}/${file} is stale: regenerate (see helpers/bert-fixtures.ts)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
