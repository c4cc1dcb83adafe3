// The notebook runtime shared by the Notebook page (web/demo/src/notebooks.ts) and the headless
// tests (tests/web/notebooks.test.ts): parses a notebook file, runs its JavaScript cells in order
// in one shared scope (top-level await, `display()`), and renders outputs as text for comparison
// with the outputs the notebook declares. No DOM and no webquant import here: the caller passes
// the package namespace in, so the same code runs in a page and in Node.
//
// Notebook format (web/notebooks/*.md): a header between `---` lines (`title:`, `course:`,
// `lesson:`, optional `note:`), then Markdown. A fenced block tagged `js` is a code cell; a fenced
// block tagged `expected` right after it holds the text that cell must display (see outputText).
// Everything else is Markdown, shown as written.
//
// Cells share variables the way notebook cells do: a top-level `const` / `let` / `var`
// declaration (one name, or a one-line `{ a, b }` / `[a, b]` destructuring), `function` or
// `class` at the start of a line outside any braces is kept in the notebook's scope for the
// cells after it.

/** @typedef {import('./runner.d.mts').Notebook} Notebook */
/** @typedef {import('./runner.d.mts').Output} Output */

const FENCE = /^```(\w*)\s*$/;

/** Parses a notebook file; throws an Error naming the file on a malformed one. */
export function parseNotebook(text, name = 'notebook') {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const meta = {};
  let i = 0;
  if (lines[0] === '---') {
    for (i = 1; i < lines.length && lines[i] !== '---'; i++) {
      const m = /^(\w+):\s*(.*)$/.exec(lines[i]);
      if (!m) throw new Error(`${name}: header line ${i + 1} is not "key: value"`);
      meta[m[1]] = m[2].trim();
    }
    if (i === lines.length) throw new Error(`${name}: the header has no closing ---`);
    i++;
  }
  for (const key of ['title', 'course', 'lesson']) {
    if (!meta[key]) throw new Error(`${name}: the header lacks "${key}:"`);
  }
  const cells = [];
  let prose = [];
  const flushProse = () => {
    const source = prose.join('\n').trim();
    if (source) cells.push({ kind: 'markdown', source });
    prose = [];
  };
  while (i < lines.length) {
    const m = FENCE.exec(lines[i]);
    if (!m || !['js', 'expected'].includes(m[1])) {
      // A fenced block of another language stays Markdown, with its closing fence.
      if (m && m[1]) {
        const start = i;
        do prose.push(lines[i++]);
        while (i < lines.length && lines[i] !== '```');
        if (i === lines.length) throw new Error(`${name}: the block opened at line ${start + 1} is not closed`);
      }
      prose.push(lines[i++]);
      continue;
    }
    const start = i++;
    const body = [];
    while (i < lines.length && lines[i] !== '```') body.push(lines[i++]);
    if (i === lines.length) throw new Error(`${name}: the block opened at line ${start + 1} is not closed`);
    i++;
    if (m[1] === 'js') {
      flushProse();
      cells.push({ kind: 'code', source: body.join('\n'), line: start + 1 });
    } else {
      const last = cells[cells.length - 1];
      if (prose.join('').trim() !== '' || !last || last.kind !== 'code' || last.expected !== undefined) {
        throw new Error(`${name}: the expected block at line ${start + 1} does not follow a js cell`);
      }
      last.expected = body.join('\n');
    }
  }
  flushProse();
  return { name, title: meta.title, course: meta.course, lesson: meta.lesson, note: meta.note, cells };
}

// ---------------------------------------------------------------------------------------------
// Cell compilation

/** Identifiers bound by a one-line destructuring pattern's inside, e.g. `a, b: c, d = 1, ...e`. */
function patternNames(inside) {
  return inside
    .split(',')
    .map((part) => {
      let p = part.trim().replace(/^\.\.\./, '');
      if (p.includes(':')) p = p.slice(p.indexOf(':') + 1);
      return p.split('=')[0].trim();
    })
    .filter((p) => /^[A-Za-z_$][\w$]*$/.test(p));
}

/** The names of `a = 1, b = f(x, y), c` (declarators on one line; commas inside brackets skipped). */
function declaratorNames(rest) {
  const names = [];
  let depth = 0;
  let expectName = true;
  for (let k = 0; k < rest.length; k++) {
    const c = rest[k];
    if (expectName) {
      const m = /^[A-Za-z_$][\w$]*/.exec(rest.slice(k));
      if (!m) break;
      names.push(m[0]);
      k += m[0].length - 1;
      expectName = false;
    } else if (c === '"' || c === "'" || c === '`') {
      for (k++; k < rest.length && rest[k] !== c; k++) if (rest[k] === '\\') k++;
    } else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ';' && depth === 0) break;
    else if (c === ',' && depth === 0) {
      while (rest[k + 1] === ' ') k++;
      expectName = true;
    }
  }
  return names;
}

/**
 * Rewrites a cell so that its top-level declarations outlive it: `const` / `let` at the top level
 * become `var` (so a later cell may declare the name again, as in a notebook) and the names are
 * returned. Strings, template literals and comments are skipped when tracking the brace depth.
 */
export function compileCell(source) {
  const names = new Set();
  const out = [];
  let depth = 0;
  let inBlockComment = false;
  let template = 0; // open template literals (their ${} nesting is approximated by depth)
  for (const line of source.split('\n')) {
    let text = line;
    if (depth === 0 && !inBlockComment && template === 0) {
      const decl = /^(const|let|var)\s+(?=[A-Za-z_$[{])/.exec(text);
      if (decl) {
        text = 'var ' + text.slice(decl[0].length);
        const rest = text.slice(4);
        if (/^[A-Za-z_$]/.test(rest)) for (const n of declaratorNames(rest)) names.add(n);
        else {
          const close = rest[0] === '{' ? '}' : ']';
          const end = rest.indexOf(close);
          if (end < 0) throw new SyntaxError(`a top-level destructuring must fit on one line: ${line.trim()}`);
          for (const n of patternNames(rest.slice(1, end))) names.add(n);
        }
      }
      const fn = /^(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)|^class\s+([A-Za-z_$][\w$]*)/.exec(text);
      if (fn) names.add(fn[1] ?? fn[2]);
    }
    out.push(text);
    // Track nesting through this line.
    for (let k = 0; k < line.length; k++) {
      const c = line[k];
      if (inBlockComment) {
        if (c === '*' && line[k + 1] === '/') (inBlockComment = false), k++;
        continue;
      }
      if (template > 0 && c !== '`') {
        if (c === '\\') k++;
        continue;
      }
      if (c === '/' && line[k + 1] === '/') break;
      if (c === '/' && line[k + 1] === '*') (inBlockComment = true), k++;
      else if (c === '"' || c === "'") {
        for (k++; k < line.length && line[k] !== c; k++) if (line[k] === '\\') k++;
      } else if (c === '`') template = template > 0 ? template - 1 : template + 1;
      else if (c === '{' || c === '(' || c === '[') depth++;
      else if (c === '}' || c === ')' || c === ']') depth = Math.max(0, depth - 1);
    }
  }
  const list = [...names];
  const exported = list.map((n) => `${n}: typeof ${n} === 'undefined' ? undefined : ${n}`).join(', ');
  return { body: `${out.join('\n')}\n;return { ${exported} };`, names: list };
}

// ---------------------------------------------------------------------------------------------
// Outputs

/** `digits` decimals, with -0 shown as 0. */
function fixed(x, digits) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const s = x.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

const INT_ARRAYS = [Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, Uint8ClampedArray];

function isTensorLike(v) {
  return v !== null && typeof v === 'object' && Array.isArray(v.shape) && ArrayBuffer.isView(v.data);
}

/** Makes the `display` function of a session, pushing outputs to `sink`. */
function makeDisplay(sink, webquant) {
  /**
   * Shows a value: strings as text, numbers, arrays and typed arrays as `[a, b]`, webquant Tensors
   * (float16/bfloat16 widened) as a torch-style matrix, other objects as JSON.
   */
  const display = (value, options = {}) => {
    if (typeof value === 'string') sink.push({ kind: 'text', text: value });
    else if (isTensorLike(value)) {
      const t = value.dtype && value.dtype !== 'float32' && webquant?.upcast ? webquant.upcast(value) : value;
      display.tensor(t.data, t.shape, { ...options, dtype: value.dtype });
    } else if (ArrayBuffer.isView(value) || Array.isArray(value)) {
      display.tensor(value, [value.length], options);
    } else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value == null) {
      sink.push({ kind: 'text', text: String(value) });
    } else sink.push({ kind: 'text', text: JSON.stringify(value, null, 2) });
  };
  /** A tensor from flat values and a shape; `digits` decimals (default 4; integers as integers). */
  display.tensor = (data, shape = [data.length], options = {}) => {
    const values = Array.from(data, Number);
    const integer = INT_ARRAYS.some((A) => data instanceof A) || options.integer === true;
    sink.push({ kind: 'tensor', shape: [...shape], values, integer, digits: options.digits ?? 4, dtype: options.dtype, label: options.label });
  };
  /** A table: `columns` (header names) and `rows` (arrays of cells); numbers shown with `digits` decimals when given. */
  display.table = (rows, options = {}) => {
    const columns = options.columns ?? (rows.length && !Array.isArray(rows[0]) ? Object.keys(rows[0]) : []);
    const cells = rows.map((r) => (Array.isArray(r) ? r : columns.map((c) => r[c])));
    const show = (v) => (typeof v === 'number' && options.digits !== undefined ? fixed(v, options.digits) : String(v));
    sink.push({ kind: 'table', columns: columns.map(String), rows: cells.map((r) => r.map(show)), caption: options.caption });
  };
  /** A Chart.js chart: `config` is a Chart.js configuration; its text form is its title and series. */
  display.chart = (config, options = {}) => {
    const title = options.title ?? config?.options?.plugins?.title?.text ?? 'chart';
    const series = (config?.data?.datasets ?? []).map((d) => `${d.label ?? 'series'} (${d.data?.length ?? 0} points)`);
    sink.push({ kind: 'chart', config, title: String(title), series });
  };
  return display;
}

/** The text of one tensor output, in the style torch prints: `tensor([[1.0000, 2.0000], ...])`. */
function tensorText(o) {
  const fmt = (v) => (o.integer ? String(v) : fixed(v, o.digits));
  const strs = o.values.map(fmt);
  const width = Math.max(0, ...strs.map((s) => s.length));
  const pad = (s) => s.padStart(width);
  const nest = (dims, offset, indent) => {
    if (dims.length <= 1) {
      const n = dims[0] ?? 1;
      return '[' + strs.slice(offset, offset + n).map(pad).join(', ') + ']';
    }
    const inner = dims.slice(1).reduce((a, b) => a * b, 1);
    const parts = [];
    for (let r = 0; r < dims[0]; r++) parts.push(nest(dims.slice(1), offset + r * inner, indent + ' '));
    return '[' + parts.join(',' + '\n'.repeat(dims.length - 1) + indent + ' ') + ']';
  };
  const body = o.shape.length === 0 ? pad(strs[0] ?? '') : nest(o.shape, 0, ' '.repeat('tensor('.length));
  const extra = o.dtype && o.dtype !== 'float32' ? `, dtype=${o.dtype}` : '';
  return `${o.label ? o.label + ' ' : ''}tensor(${body}${extra})`;
}

/** One output as text (what the declared expected outputs are compared against). */
export function outputToText(o) {
  switch (o.kind) {
    case 'text':
      return o.text;
    case 'tensor':
      return tensorText(o);
    case 'table': {
      const lines = [o.columns.join(' | '), ...o.rows.map((r) => r.join(' | '))];
      return (o.caption ? o.caption + '\n' : '') + lines.join('\n');
    }
    case 'chart':
      return `[chart: ${o.title}; ${o.series.join(', ')}]`;
    default:
      return '';
  }
}

/** Every output of a cell as text, one after the other, trailing spaces trimmed. */
export function outputText(outputs) {
  return normalize(outputs.map(outputToText).join('\n'));
}

/** Trims trailing spaces on every line and blank lines at both ends. */
export function normalize(text) {
  return text
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/^\n+|\n+$/g, '');
}

// ---------------------------------------------------------------------------------------------
// Sessions

/**
 * A notebook session: one shared scope holding `webquant` (the package namespace), `display`
 * and every top-level name the cells declare. `run(source)` runs one cell; `close()` disposes every
 * top-level value that has a `dispose()` method (call it when the notebook is closed or run afresh).
 */
export function createSession(webquant, globals = {}) {
  const scope = Object.create(null);
  Object.assign(scope, globals, { webquant });
  let sink = [];
  scope.display = makeDisplay({ push: (o) => sink.push(o) }, webquant);
  return {
    scope,
    async run(source) {
      sink = [];
      const outputs = sink;
      try {
        const { body } = compileCell(source);
        // Sloppy-mode wrapper so `with` can resolve free names through the notebook's scope.
        const fn = new Function('__scope', `with (__scope) { return (async () => {\n${body}\n})(); }`);
        const names = await fn(scope);
        for (const [k, v] of Object.entries(names)) scope[k] = v;
        return { outputs, error: undefined };
      } catch (error) {
        return { outputs, error };
      }
    },
    close() {
      // What the lesson code left in WebAssembly memory (tensors, layers, models), as a Python
      // kernel's shutdown frees them; a value shared by two names is disposed once.
      const seen = new Set();
      for (const v of Object.values(scope)) {
        if (v === null || typeof v !== 'object' || seen.has(v) || typeof v.dispose !== 'function') continue;
        seen.add(v);
        v.dispose();
      }
    },
  };
}
