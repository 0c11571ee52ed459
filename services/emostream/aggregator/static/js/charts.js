// Charts through uPlot (vendored, MIT: /dashboard/static/vendor/uplot/LICENSE), loaded as the
// global ``uPlot`` by the page. Stacked bars are drawn as cumulative series, largest first, so
// each emotion's band shows above the ones before it.

import { COLORS, EMOTIONS } from "./ui.js";

const HEIGHT = 220;

function cumulative(windows) {
  // One row per emotion: its running total over EMOTIONS order, for each window.
  const rows = EMOTIONS.map(() => []);
  for (const w of windows) {
    let sum = 0;
    EMOTIONS.forEach((e, k) => {
      sum += w.events ? w.mean_probabilities[e] || 0 : 0;
      rows[k].push(Math.min(sum, 1));
    });
  }
  return rows.reverse();  // neutral's total first: drawn first, underneath
}

/** A stacked-bar chart of mean probabilities per rolling window, in ``el``. */
export class DistributionChart {
  constructor(el, names) {
    this.el = el;
    this.names = names;
    const bars = window.uPlot.paths.bars({ size: [0.6, 90] });
    const opts = {
      width: this.width(), height: HEIGHT,
      legend: { show: false }, cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: [0, 1] } },
      axes: [
        { splits: () => names.map((_, i) => i), values: (u, splits) => splits.map((i) => names[i] ?? "") },
        { values: (u, splits) => splits.map((v) => `${Math.round(v * 100)}%`), size: 50 },
      ],
      series: [{}, ...[...EMOTIONS].reverse().map((e) => ({
        label: e, fill: COLORS[e], stroke: COLORS[e], width: 0, paths: bars, points: { show: false },
      }))],
    };
    this.plot = new window.uPlot(opts, this.data([]), el);
    this.onResize = () => this.plot.setSize({ width: this.width(), height: HEIGHT });
    window.addEventListener("resize", this.onResize);
  }

  width() { return Math.max(240, Math.min(this.el.clientWidth || 600, 900)); }

  data(windows) {
    const filled = this.names.map((_, i) => windows[i] || { events: 0, mean_probabilities: {} });
    return [this.names.map((_, i) => i), ...cumulative(filled)];
  }

  update(windows) { this.plot.setData(this.data(windows)); }

  destroy() { window.removeEventListener("resize", this.onResize); this.plot.destroy(); }
}
