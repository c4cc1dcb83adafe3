// The Llama tokenizers in Node (web/src/models: Tokenizer), against the repos' own tokenizer.json
// in ../shared/hub: stories260K's SentencePiece-style vocabulary (BOS, byte fallback, decoding,
// chat templates) and SmolLM2's byte-level BPE. Run after `npx tsc -p tsconfig.json` (the package is
// imported from dist/). The models themselves: llama.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HUB_DIR, importDist } from './helpers/repo.js';
import { throwsWith } from './helpers/errors.js';

type Models = typeof import('../../dist/models/index.js');

const REPO_DIR = path.join(HUB_DIR, 'karpathy/stories260K');
const { Tokenizer } = (await importDist('models/index.js')) as Models;

describe('tokenizer', () => {
  const tokenizerJson = JSON.parse(readFileSync(path.join(REPO_DIR, 'tokenizer.json'), 'utf8'));
  const tokenizerConfig = JSON.parse(readFileSync(path.join(REPO_DIR, 'tokenizer_config.json'), 'utf8'));
  const tok = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig);
  const vocab = tokenizerJson.model.vocab as Record<string, number>;
  const idToPiece = new Map(Object.entries(vocab).map(([piece, id]) => [id, piece]));

  test('encode adds BOS as the tokenizer config says: "Zoo" -> 1, 410, 469, 347', () => {
    assert.deepEqual(tok.encode('Zoo'), [1, 410, 469, 347]);
    assert.deepEqual(tok.encode('Zoo', { addSpecialTokens: false }), [410, 469, 347]);
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosTokenId, 2);
    assert.equal(tok.vocabSize, 512);
  });

  test('ids map to the pieces of tokenizer.json, and decode inverts encode', () => {
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside.';
    const ids = tok.encode(text);
    assert.equal(ids[0], 1);
    // Each piece is the vocab entry of its id; together they spell the text (▁ = space).
    const pieces = ids.slice(1).map((id) => {
      assert.equal(tok.idToToken(id), idToPiece.get(id), `id ${id}`);
      assert.equal(tok.tokenToId(idToPiece.get(id)!), id);
      return idToPiece.get(id)!;
    });
    assert.equal(pieces.join('').replace(/▁/g, ' '), ' ' + text);
    assert.equal(tok.decode(ids), text);
    assert.equal(tok.decode(ids, { skipSpecialTokens: false }), '<s> ' + text);
    assert.ok(tok.isSpecial(1) && tok.isSpecial(2) && !tok.isSpecial(410));
  });

  test('byte fallback: characters outside the 512-piece vocab round-trip through <0xNN> pieces', () => {
    const text = 'Zoë & 🦁';
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.ok(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(idToPiece.get(id) ?? '')), 'expected byte pieces');
    assert.equal(tok.decode(ids), text);
  });

  test('the stream decoder emits exactly the text of the full decode, one delta per token', () => {
    const text = 'Zoo was a little girl. Zoë said: "🦁 roar!" The end.';
    const ids = tok.encode(text);
    const prompt = ids.slice(0, 4);
    const dec = tok.createStreamDecoder(prompt);
    let streamed = '';
    const deltas: string[] = [];
    for (const id of ids.slice(4)) {
      const d = dec.push(id);
      assert.ok(!d.includes('\uFFFD'), `a delta holds a broken character: ${JSON.stringify(d)}`);
      deltas.push(d);
      streamed += d;
    }
    streamed += dec.flush();
    assert.equal(tok.decode(prompt) + streamed, text);
    // The 4 bytes of 🦁 arrive as 4 tokens: three empty deltas, then the whole character.
    assert.ok(deltas.includes('🦁') || deltas.some((d) => d.startsWith('🦁') || d.endsWith('🦁')));
  });

  test('chat templates render with jinja; a tokenizer without one says so', () => {
    const template =
      "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    const withTemplate = Tokenizer.fromJSON(tokenizerJson, { ...tokenizerConfig, chat_template: template });
    const messages = [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hi' },
    ];
    assert.equal(withTemplate.applyChatTemplate(messages), '<s><|system|>Be kind.</s><|user|>Hi</s><|assistant|>');
    assert.equal(withTemplate.applyChatTemplate(messages, { addGenerationPrompt: false }), '<s><|system|>Be kind.</s><|user|>Hi</s>');
    const named = Tokenizer.fromJSON(tokenizerJson, { chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: 'D{{ messages|length }}' }] });
    assert.equal(named.applyChatTemplate(messages), 'D2');
    throwsWith(() => tok.applyChatTemplate(messages), 'unsupported', /no chat_template/);
  });

  test('the SmolLM2 tokenizer (byte-level BPE) round-trips text', () => {
    const smol = JSON.parse(readFileSync(path.join(HUB_DIR, 'HuggingFaceTB/SmolLM2-135M-Instruct/tokenizer.json'), 'utf8'));
    const t = Tokenizer.fromJSON(smol);
    const text = 'Hello world, café — naïve 🦁!';
    const ids = t.encode(text);
    assert.ok(ids.length > 5);
    assert.equal(t.decode(ids), text);
    assert.equal(t.tokenToId('<|im_start|>') !== undefined, true);
  });

  test('a tokenizer.json without a model is rejected', () => {
    throwsWith(() => Tokenizer.fromJSON({ version: '1.0' }), 'corrupt_data', /model/);
  });
});
