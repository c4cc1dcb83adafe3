// Model lab, sections 5 and 6: GGUF export of the downloaded checkpoint, and saving the quantized
// model as a webquant checkpoint (Blob URL downloads).
import { $, fmtBytes, h, showError } from './common.js';
import { clearError, nextFrame, select, state, syncControls } from './lab-state.js';
import { exportGguf, ggufInfo, type GgufType, type SavedFile } from './wq.js';

let lastExportUrl: string | undefined;

export async function runExport(): Promise<void> {
  if (!state.lab || state.busy) return;
  clearError('export-error');
  const type = select('gguf-type').value as GgufType;
  state.busy = true;
  syncControls();
  $('export-out').textContent = `Writing ${type.toUpperCase()} GGUF…`;
  await nextFrame();
  try {
    const bytes = exportGguf(state.lab.files, { type, name: state.lab.repo });
    const info = ggufInfo(bytes);
    const fileName = `${state.lab.repo.split('/').pop()}-${type}.gguf`;
    if (lastExportUrl) URL.revokeObjectURL(lastExportUrl);
    lastExportUrl = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
    const link = h('a', { href: lastExportUrl, download: fileName, id: 'gguf-link', text: `Download ${fileName} again` });
    const counts = Object.entries(info.typeCounts)
      .map(([t, n]) => `${n} × ${t}`)
      .join(', ');
    $('export-out').replaceChildren(
      h('p', {}, `${fileName}: ${fmtBytes(bytes.byteLength)}, GGUF v${info.version}, ${info.tensors.length} tensors (${counts}). `, link),
    );
    link.click();
  } catch (e) {
    $('export-out').replaceChildren();
    showError($('export-error'), e);
  } finally {
    state.busy = false;
    syncControls();
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Saving the quantized model

let saveUrls: string[] = [];

function revokeSaveUrls(): void {
  for (const url of saveUrls) URL.revokeObjectURL(url);
  saveUrls = [];
}

/** Hides the save section (no quantized model, or a new one on its way) and drops its links. */
export function hideSave(): void {
  revokeSaveUrls();
  $('save-section').hidden = true;
  $('save-out').replaceChildren();
  clearError('save-error');
}

/** A Blob URL link that downloads one saved file under its own name. */
function fileLink(f: SavedFile, index: number): HTMLAnchorElement {
  const type = f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
  const url = URL.createObjectURL(new Blob([f.bytes], { type }));
  saveUrls.push(url);
  return h('a', { href: url, download: f.name, id: `save-file-${index}`, text: f.name });
}

export async function runSave(): Promise<void> {
  const l = state.lab;
  if (!l?.quantized || state.busy) return;
  clearError('save-error');
  state.busy = true;
  syncControls();
  revokeSaveUrls();
  $('save-out').textContent = 'Writing the checkpoint in the quantized model’s worker…';
  try {
    const files = await l.quant.model.saveQuantized({
      progress: (p) => ($('save-out').textContent = `Writing the checkpoint in the quantized model’s worker: ${p.file} (${p.index + 1} of ${p.count})…`),
    });
    const links = files.map((f, i) => fileLink(f, i));
    const total = files.reduce((n, f) => n + f.bytes.byteLength, 0);
    const folder = `${l.repo.split('/').pop()}-${l.quantized.options.weights}`;
    $('save-out').replaceChildren(
      h('p', {}, `${files.length} files, ${fmtBytes(total)} in all. Put them in one folder (e.g. ${folder}/). If the browser asks, allow this page to download several files; each link below downloads its file again.`),
      h('ul', { 'aria-label': 'Saved files' }, ...files.map((f, i) => h('li', {}, links[i]!, ` · ${fmtBytes(f.bytes.byteLength)}`))),
    );
    for (const a of links) a.click();
  } catch (e) {
    $('save-out').replaceChildren();
    showError($('save-error'), e);
  } finally {
    state.busy = false;
    syncControls();
  }
}

