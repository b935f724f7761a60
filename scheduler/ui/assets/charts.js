// Charts of the gaxx dashboard, drawn by uPlot (served by gaxx itself, see assets.ts).
(function () {
  'use strict';

  function width(el) {
    return Math.max(300, el.clientWidth || el.parentElement.clientWidth || 800);
  }

  // Tasks finished per second and failures per second over a run's time.
  function runChart(el) {
    let plot = null;
    return {
      update(series) {
        const xs = series.map((p) => p[0]);
        const data = [xs, series.map((p) => p[1]), series.map((p) => p[2])];
        if (!plot) {
          plot = new uPlot(
            {
              width: width(el),
              height: 220,
              scales: { x: { time: true } },
              series: [{}, { label: 'tasks/s', stroke: '#1a7f37', width: 1.5 }, { label: 'failures/s', stroke: '#c62828', width: 1.5 }],
              axes: [{}, { label: 'per second' }],
            },
            data,
            el,
          );
        } else {
          plot.setData(data);
        }
      },
      reset() {
        if (plot) plot.destroy();
        plot = null;
      },
    };
  }

  // 1-minute load average per host, as bars; x is the host's position in the table.
  function loadChart(el) {
    let plot = null;
    let names = [];
    return {
      update(hosts, loads) {
        names = hosts;
        const data = [hosts.map((_, i) => i), loads];
        if (!plot || plot.data[0].length !== hosts.length) {
          if (plot) plot.destroy();
          plot = new uPlot(
            {
              width: width(el),
              height: 180,
              scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } },
              series: [
                { label: 'host', value: (u, v) => (v == null ? '' : names[v] || '') },
                { label: 'load 1m', fill: 'rgba(29,35,48,0.25)', stroke: '#1d2330', paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
              ],
              axes: [{ values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? names[t] || '' : '')) }, { label: 'load' }],
            },
            data,
            el,
          );
        } else {
          plot.setData(data);
        }
      },
    };
  }

  window.gaxxCharts = { runChart, loadChart };
})();
