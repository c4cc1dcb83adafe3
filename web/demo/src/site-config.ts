// Site settings shared by the demo pages: the Hub endpoint the pages use by default. The local
// demo (scripts/demo.sh) serves a Hub mirror on the page's own origin; the static site built by
// `npm run build:site` defaults to https://huggingface.co. `?endpoint=URL` overrides both, and a
// choice made in a page's endpoint menu is remembered (localStorage, shared with the Model lab).

/** The remembered endpoint choice: `'local'` (this origin) or a URL. */
export const ENDPOINT_KEY = 'webquant-demo:endpoint';

/** `'local'` (the page's own origin serves the Hub mirror) or a Hub URL; fixed at build time. */
export const DEFAULT_ENDPOINT: string = import.meta.env.VITE_WEBQUANT_DEFAULT_ENDPOINT || 'local';

/** The endpoint given by `?endpoint=` (an http(s) URL, trailing slashes removed), if any. */
export function endpointParam(): string | undefined {
  const given = new URLSearchParams(location.search).get('endpoint');
  return given && /^https?:\/\//.test(given) ? given.replace(/\/+$/, '') : undefined;
}

/** The endpoint choice in force: `?endpoint=`, else the remembered one, else the site default. */
export function endpointChoice(): string {
  return endpointParam() ?? localStorage.getItem(ENDPOINT_KEY) ?? DEFAULT_ENDPOINT;
}

/** A choice as a URL (`'local'` is this page's origin). */
export function endpointUrl(choice: string): string {
  return choice === 'local' ? location.origin : choice;
}
