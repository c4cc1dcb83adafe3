// A small Markdown renderer for notebook prose: headings, paragraphs, lists, fenced and indented
// code, inline code, bold, italics and links. Text is escaped first; links keep only http(s),
// relative and in-page targets, so a notebook cannot inject markup or script URLs.

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function inline(text: string): string {
  const codes: string[] = [];
  let s = escape(text).replace(/`([^`]+)`/g, (_, c: string) => `\u0000${codes.push(c) - 1}\u0000`);
  s = s
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label: string, href: string) =>
      /^(https?:\/\/|\.{0,2}\/|#)/.test(href) ? `<a href="${href}">${label}</a>` : label,
    );
  return s.replace(/\u0000(\d+)\u0000/g, (_, i: string) => `<code>${codes[Number(i)]}</code>`);
}

/** Markdown to HTML (escaped; see the file comment for what is supported). */
export function markdownToHtml(md: string): string {
  const lines = md.split('\n');
  const out: string[] = [];
  let para: string[] = [];
  let list: { tag: 'ul' | 'ol'; items: string[] } | undefined;
  const flush = () => {
    if (para.length) out.push(`<p>${inline(para.join(' '))}</p>`);
    para = [];
    if (list) out.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join('')}</${list.tag}>`);
    list = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^```(\w*)\s*$/.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
      out.push(`<pre class="code"><code>${escape(body.join('\n'))}</code></pre>`);
      continue;
    }
    if (/^ {4}/.test(line) && para.length === 0 && !list) {
      const body: string[] = [];
      for (; i < lines.length && (/^ {4}/.test(lines[i]!) || lines[i] === ''); i++) body.push(lines[i]!.slice(4));
      i--;
      out.push(`<pre class="code"><code>${escape(body.join('\n').trimEnd())}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const item = /^\s*(?:([-*])|(\d+)\.)\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      // The notebook's own title is the page's h1; headings inside start at h2.
      const level = Math.min(heading[1]!.length + 1, 6);
      out.push(`<h${level}>${inline(heading[2]!)}</h${level}>`);
    } else if (item) {
      if (para.length) flush();
      const tag = item[1] ? 'ul' : 'ol';
      if (!list || list.tag !== tag) {
        flush();
        list = { tag, items: [] };
      }
      list.items.push(item[3]!);
    } else if (line.trim() === '') flush();
    else if (list && /^\s+/.test(line)) list.items[list.items.length - 1] += ' ' + line.trim();
    else para.push(line.trim());
  }
  flush();
  return out.join('\n');
}
