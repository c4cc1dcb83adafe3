// The committed T5 fixtures of the native tests (tests/fixtures/arch/t5-*) are exactly what the
// float64 reference (helpers/ref/t5.ts) and the synthetic-repo writer produce today.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T5_FIXTURE_DIR, T5_FIXTURES, writeT5Fixtures } from './helpers/t5-fixtures.js';

test('tests/fixtures/arch/t5-* match a fresh generation byte for byte', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'webquant-t5-fixtures-check-'));
  try {
    writeT5Fixtures(dir);
    for (const f of T5_FIXTURES) {
      const files = readdirSync(path.join(dir, f.name)).sort();
      assert.deepEqual(readdirSync(path.join(T5_FIXTURE_DIR, f.name)).sort(), files, f.name);
      for (const file of files) {
        const fresh = readFileSync(path.join(dir, f.name, file));
        assert.ok(fresh.equals(readFileSync(path.join(T5_FIXTURE_DIR, f.name, file))), `${f.name}/${file} is stale: regenerate (see helpers/t5-fixtures.ts)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
