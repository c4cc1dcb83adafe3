// The committed BLIP fixtures of the native tests (tests/fixtures/arch/blip-*) are exactly what the
// float64 reference (helpers/ref/blip.ts) and the synthetic-repo writer produce today.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLIP_FIXTURE_DIR, BLIP_FIXTURES, writeBlipFixtures } from './helpers/blip-fixtures.js';

test('tests/fixtures/arch/blip-* match a fresh generation byte for byte', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'webquant-blip-fixtures-check-'));
  try {
    writeBlipFixtures(dir);
    for (const f of BLIP_FIXTURES) {
      const files = readdirSync(path.join(dir, f.name)).sort();
      assert.deepEqual(readdirSync(path.join(BLIP_FIXTURE_DIR, f.name)).sort(), files, f.name);
      for (const file of files) {
        const fresh = readFileSync(path.join(dir, f.name, file));
        assert.ok(fresh.equals(readFileSync(path.join(BLIP_FIXTURE_DIR, f.name, file))), `${f.name}/${file} is stale: regenerate (see helpers/blip-fixtures.ts)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
