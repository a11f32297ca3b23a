/**
 * The report's curves as SVG, made PNG by sharp (as confusion.png is): `pr.png`, precision
 * against recall per class (one-vs-rest) with each class's AP in the legend, and
 * `reliability.png`, the calibration bins behind ECE (accuracy against confidence, the
 * diagonal being perfect calibration).
 */
import type { CalibrationBin, PrCurve } from './metrics.js';

const FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';
/** Ten distinct colours (Tableau 10); more classes reuse them with dashes. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
const PLOT = { left: 60, top: 40, size: 320 } as const;

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

const MAX_LABEL_CHARS = 28;

/** Long labels lose their middle, not their end: class names often differ only in a suffix. */
export function shortLabel(label: string): string {
  if (label.length <= MAX_LABEL_CHARS) return label;
  const head = Math.ceil((MAX_LABEL_CHARS - 1) / 2);
  return `${label.slice(0, head)}…${label.slice(label.length - (MAX_LABEL_CHARS - 1 - head))}`;
}

/** x, y in [0, 1] to pixels. */
const px = (x: number): number => PLOT.left + x * PLOT.size;
const py = (y: number): number => PLOT.top + (1 - y) * PLOT.size;

/** The frame, ticks and axis titles of a unit square plot. */
function axes(title: string, xTitle: string, yTitle: string, width: number, height: number): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<g font-family="${FONT}" fill="#000">`,
    `<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.size}" height="${PLOT.size}" fill="none" stroke="#444"/>`,
  ];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(
      `<line x1="${px(t)}" y1="${py(0)}" x2="${px(t)}" y2="${py(0) + 4}" stroke="#444"/><text x="${px(t)}" y="${py(0) + 16}" font-size="11" text-anchor="middle">${t}</text>`,
    );
    out.push(
      `<line x1="${px(0) - 4}" y1="${py(t)}" x2="${px(0)}" y2="${py(t)}" stroke="#444"/><text x="${px(0) - 7}" y="${py(t)}" font-size="11" text-anchor="end" dominant-baseline="central">${t}</text>`,
    );
  }
  out.push(`<text x="${px(0.5)}" y="${py(0) + 34}" font-size="13" text-anchor="middle">${xTitle}</text>`);
  out.push(
    `<text x="16" y="${py(0.5)}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${py(0.5)})">${yTitle}</text>`,
  );
  return out;
}

/** Precision against recall, a step curve per class with a positive sample, and the AP of each in the legend. */
export function prSvg(curves: readonly PrCurve[], options: { title?: string } = {}): string {
  const shown = curves.filter((c) => c.ap !== null);
  const legendWidth = 40 + Math.max(10, ...shown.map((c) => shortLabel(c.label).length + 12)) * 7;
  const width = PLOT.left + PLOT.size + 20 + legendWidth;
  const height = Math.max(PLOT.top + PLOT.size + 50, PLOT.top + 20 * shown.length + 20);
  const out = axes(options.title ?? 'Precision-recall (one-vs-rest)', 'recall', 'precision', width, height);
  shown.forEach((c, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const dash = i >= PALETTE.length ? ' stroke-dasharray="5 3"' : '';
    // A step curve: precision holds until recall moves on.
    let path = `M ${px(0)} ${py(c.points[0]?.precision ?? 1)}`;
    let lastPrecision = c.points[0]?.precision ?? 1;
    for (const p of c.points) {
      path += ` L ${px(p.recall)} ${py(lastPrecision)} L ${px(p.recall)} ${py(p.precision)}`;
      lastPrecision = p.precision;
    }
    out.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    const ly = PLOT.top + 10 + i * 20;
    const lx = PLOT.left + PLOT.size + 20;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`,
    );
    out.push(
      `<text x="${lx + 30}" y="${ly}" font-size="12" dominant-baseline="central">${escapeXml(shortLabel(c.label))} (AP ${c.ap!.toFixed(3)})</text>`,
    );
  });
  out.push('</g></svg>');
  return out.join('\n');
}

/** Accuracy against confidence per bin (bars), the mean confidence of each bin (ticks), the diagonal, and ECE in the title. */
export function reliabilitySvg(
  bins: readonly CalibrationBin[],
  ece: number,
  options: { title?: string } = {},
): string {
  const width = PLOT.left + PLOT.size + 30;
  const height = PLOT.top + PLOT.size + 50;
  const out = axes(
    options.title ?? `Reliability (ECE ${ece.toFixed(3)})`,
    'confidence (top probability)',
    'accuracy',
    width,
    height,
  );
  for (const b of bins) {
    if (b.count === 0) continue;
    const x = px(b.lo);
    const w = px(b.hi) - x;
    out.push(
      `<rect x="${x + 1}" y="${py(b.accuracy)}" width="${w - 2}" height="${py(0) - py(b.accuracy)}" fill="#4e79a7" fill-opacity="0.8"/>`,
    );
    out.push(
      `<line x1="${x + 1}" y1="${py(b.confidence)}" x2="${x + w - 1}" y2="${py(b.confidence)}" stroke="#e15759" stroke-width="2"/>`,
    );
    out.push(
      `<text x="${x + w / 2}" y="${py(b.accuracy) - 4}" font-size="9" text-anchor="middle">${b.count}</text>`,
    );
  }
  out.push(
    `<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#888" stroke-dasharray="4 3"/>`,
  );
  out.push('</g></svg>');
  return out.join('\n');
}
