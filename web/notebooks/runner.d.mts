// Types of runner.mjs (the notebook runtime shared by the Notebook page and the headless tests).

/** A Markdown cell, shown as written. */
export interface MarkdownCell {
  kind: 'markdown';
  source: string;
}

/** A JavaScript cell and, when the notebook declares it, the text it must display. */
export interface CodeCell {
  kind: 'code';
  source: string;
  /** 1-based line of the opening fence in the notebook file. */
  line: number;
  expected?: string;
}

/** A parsed notebook file. */
export interface Notebook {
  /** The file name it was parsed from. */
  name: string;
  title: string;
  /** The course it follows, e.g. "Quantization in Depth". */
  course: string;
  /** The lesson it follows, e.g. "L3 Quantize and De-quantize a Tensor". */
  lesson: string;
  /** A note on how it departs from the course (e.g. the model used instead), if any. */
  note?: string;
  cells: (MarkdownCell | CodeCell)[];
}

/** What `display()` produced. */
export type Output =
  | { kind: 'text'; text: string }
  | { kind: 'tensor'; shape: number[]; values: number[]; integer: boolean; digits: number; dtype?: string; label?: string }
  | { kind: 'table'; columns: string[]; rows: string[][]; caption?: string }
  | { kind: 'chart'; config: unknown; title: string; series: string[] };

/** The result of one cell. */
export interface CellResult {
  outputs: Output[];
  /** What the cell threw, if it did. */
  error: unknown;
}

/** A notebook session: one shared scope for its cells. */
export interface Session {
  scope: Record<string, unknown>;
  run(source: string): Promise<CellResult>;
  /** Disposes every top-level value of the scope that has a `dispose()` method (tensors, layers, models). */
  close(): void;
}

/** Parses a notebook file (header, Markdown, `js` cells, `expected` blocks); throws an Error naming the file and line. */
export function parseNotebook(text: string, name?: string): Notebook;
/** Rewrites a cell so its top-level declarations are returned to the session (see runner.mjs). */
export function compileCell(source: string): { body: string; names: string[] };
/** A session whose cells see `webquant` (the package namespace), `display` and `globals`. */
export function createSession(webquant: unknown, globals?: Record<string, unknown>): Session;
/** One output as the text the expected blocks hold. */
export function outputToText(output: Output): string;
/** A cell's outputs as one text, normalized. */
export function outputText(outputs: Output[]): string;
/** Trailing spaces on each line and blank lines at both ends removed. */
export function normalize(text: string): string;
