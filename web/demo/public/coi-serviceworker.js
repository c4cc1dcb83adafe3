/*
 * Cross-origin isolation on static hosts that cannot send COOP/COEP headers (GitHub Pages, static
 * Spaces): this one file is both a page script and a service worker (the coi-serviceworker
 * approach; written for webquant). As a page script, on a page that is not cross-origin isolated,
 * it registers itself as the site's service worker and reloads once the worker controls the page.
 * As the worker, it adds `Cross-Origin-Opener-Policy: same-origin`,
 * `Cross-Origin-Embedder-Policy: require-corp` and `Cross-Origin-Resource-Policy: cross-origin` to
 * the site's own responses, so `crossOriginIsolated` becomes true and webquant loads its pthreads
 * build. Cross-origin requests (the Hub) pass through untouched: they are CORS requests, which
 * require-corp accepts.
 *
 * Without service workers (or with `?coi=0`, which also unregisters the worker) nothing happens and
 * the pages run the single-thread build. On a host that already sends the headers, nothing happens.
 */
if (typeof window === 'undefined') {
  self.addEventListener('install', () => self.skipWaiting());
  self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
  self.addEventListener('fetch', (event) => {
    const request = event.request;
    if (new URL(request.url).origin !== self.location.origin) return;
    if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
    event.respondWith(
      fetch(request).then((response) => {
        if (response.status === 0) return response;
        const headers = new Headers(response.headers);
        headers.set('Cross-Origin-Opener-Policy', 'same-origin');
        headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
        headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
        return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
      }),
    );
  });
} else {
  (() => {
    const KEY = 'webquant-coi-reloaded';
    const sw = navigator.serviceWorker;
    const off = new URLSearchParams(location.search).get('coi') === '0';
    if (off) {
      sw?.getRegistrations().then((regs) => regs.forEach((r) => r.unregister()));
      return;
    }
    if (window.crossOriginIsolated) {
      sessionStorage.removeItem(KEY);
      return;
    }
    if (!window.isSecureContext || !sw) return; // service workers need https or localhost
    // Reload at most once per tab session: if the headers do not make the page isolated (an old
    // browser), stay single-threaded instead of reloading forever.
    if (sessionStorage.getItem(KEY)) return;
    const reload = () => {
      sessionStorage.setItem(KEY, '1');
      location.reload();
    };
    sw.register(document.currentScript.src).then(
      (registration) => {
        if (sw.controller) reload(); // controlled already, but this response came before the worker
        else sw.addEventListener('controllerchange', reload);
        registration.update?.();
      },
      (error) => console.warn('webquant: the cross-origin isolation service worker did not register:', error),
    );
  })();
}
