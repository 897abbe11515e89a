// Two renderings of the schema's keys (reference.ts): the README's key reference (a markdown
// table, checked fresh by docs.test.ts; refreshed by scripts/policy-docs.mjs) and the annotated
// starter file `clawpod policy init` writes, which as written is the built-in strict policy.
import { allKeys, inlineYaml, type KeyInfo, policyKeys } from './reference.js';

export const README_BEGIN = '<!-- policy-keys:begin -->';
export const README_END = '<!-- policy-keys:end -->';

const cell = (s: string) => s.replace(/\|/g, '\\|');
const code = (s: string) => `\`${cell(s)}\``;

/** The key reference: one table row per key, nested keys by their dotted path. */
export function keyReferenceMarkdown(): string {
  const rows = allKeys().map((k) => {
    const below = k.children.some((c) => c.default !== undefined) && k.kind === 'mapping';
    const dflt = k.default !== undefined ? code(k.default) : k.required ? 'required' : below ? '(see below)' : 'absent';
    const example = k.example !== undefined ? code(inlineYaml(k.example)) : '';
    return `| ${code(k.path)} | ${cell(k.kind)} | ${dflt} | ${example} | ${cell(k.description)} |`;
  });
  return [
    '<!-- generated from src/policy/schema.ts by `node scripts/policy-docs.mjs`; do not edit by hand -->',
    'Every key a policy file may hold; nested keys by their path, `[]` standing for each list item. A key',
    'left out takes its default. `clawpod policy init` writes all of them as an annotated starter file.',
    '',
    '| key | value | default | example | what it does |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** text with the block between the markers replaced by the current key reference. */
export function withKeyReference(readme: string): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) throw new Error(`README has no ${README_BEGIN} ... ${README_END} block`);
  return `${readme.slice(0, begin + README_BEGIN.length)}\n${keyReferenceMarkdown()}\n${readme.slice(end)}`;
}

/** Words wrapped into comment lines of at most `width` characters; `hang` indents the lines after the first. */
function comment(text: string, indent: string, hang = '', first = '', width = 100): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const lead = out.length ? hang : first;
    if (line && indent.length + 2 + lead.length + line.length + 1 + word.length > width) {
      out.push(`${indent}# ${lead}${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(`${indent}# ${out.length ? hang : first}${line}`);
  return out;
}

const leaf = (k: KeyInfo) => k.path.split('.').pop()?.replace(/\[\]$/, '') as string;

/** A list of mappings as YAML block lines: "- a: 1", "  b: [x]". */
function itemLines(items: unknown[]): string[] {
  return items.flatMap((item) => Object.entries(item as Record<string, unknown>).map(([k, v], i) => `${i === 0 ? '- ' : '  '}${k}: ${inlineYaml(v)}`));
}

/** One key of the starter file: its description, then its value (the default) or, where absence
 *  means something of its own or the default is empty, a commented example. */
function starterKey(k: KeyInfo, indent: string, commented: boolean): string[] {
  const lines = comment(k.description, indent);
  const name = leaf(k);
  const itemKeys = k.children.length && k.kind === 'list of mappings' ? k.children : null;
  if (itemKeys) {
    lines.push(`${indent}# Each item:`);
    for (const c of allKeys(itemKeys)) {
      const depth = c.path.split('.').length - k.path.split('.').length;
      const pad = `  ${'  '.repeat(depth - 1)}`;
      lines.push(...comment(`${leaf(c)}:${c.required ? ' (required)' : ''} ${c.description}`, indent, `${pad}    `, pad));
    }
  }
  if (k.children.length && !itemKeys) {
    // A mapping: written out when some key below has a default, else shown as a commented example.
    const live = !commented && k.children.some((c) => c.default !== undefined);
    lines.push(`${indent}${live ? '' : '# '}${name}:`);
    for (const c of k.children) lines.push(...starterKey(c, `${indent}  `, !live));
    return lines;
  }
  if (!commented && k.default !== undefined) lines.push(`${indent}${name}: ${k.default}`);
  if (k.example === undefined) return lines;
  if (itemKeys) {
    lines.push(`${indent}# for example:`, `${indent}# ${name}:`, ...itemLines(k.example as unknown[]).map((l) => `${indent}#   ${l}`));
  } else if (commented || k.default === undefined || k.default === '[]' || k.default === '{}') {
    lines.push(`${indent}# ${commented ? '' : 'e.g. '}${name}: ${inlineYaml(k.example)}`);
  }
  return lines;
}

/** The annotated starter policy: every key with its description; as written, the strict policy. */
export function starterPolicy(): string {
  const head = [
    '# A clawpod policy. Every value written below is the default, so as it stands this file is',
    '# the built-in strict policy: no network, no secrets, no host files but the workspace.',
    '# Commented "# name: value" lines are examples: remove the "# " to use one; an "e.g." line',
    '# replaces the line above it.',
    '#   clawpod policy check FILE     validate it (and warn about what a run would refuse)',
    '#   clawpod policy explain FILE   what it grants, in plain words',
    '#   clawpod exec --policy FILE -- CMD',
  ];
  const body = policyKeys().map((k) => starterKey(k, '', false).join('\n'));
  return `${[head.join('\n'), ...body].join('\n\n')}\n`;
}
