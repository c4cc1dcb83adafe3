// The committed fixtures of the native architecture tests are exactly what the float64 references
// and the synthetic-repo writer produce today (so a change to either cannot leave them stale).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { FIXTURE_DIR, FIXTURES, writeFixtures } from './helpers/arch-fixtures.js';

test('tests/fixtures/arch matches a fresh generation byte for byte', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'webquant-fixtures-check-'));
  try {
    writeFixtures(dir);
    for (const f of FIXTURES) {
      const files = readdirSync(path.join(dir, f.name)).sort();
      assert.deepEqual(readdirSync(path.join(FIXTURE_DIR, f.name)).sort(), files, f.name);
      for (const file of files) {
        const fresh = readFileSync(path.join(dir, f.name, file));
        assert.ok(fresh.equals(readFileSync(path.join(FIXTURE_DIR, f.name, file))), `${f.name}/${file} is stale: regenerate (see helpers/arch-fixtures.ts)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
