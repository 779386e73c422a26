/** Small server-rendered SVG charts: readable without JavaScript, labelled for screen readers. */

export function BarChart({ title, data, height = 160 }: { title: string; data: { label: string; value: number }[]; height?: number }) {
  const max = Math.max(1, ...data.map((d) => d.value));
  const barWidth = data.length > 0 ? Math.max(8, Math.min(48, 560 / data.length - 6)) : 0;
  const width = Math.max(200, data.length * (barWidth + 6) + 40);
  return (
    <figure>
      <figcaption className="text-sm font-medium text-slate-700">{title}</figcaption>
      <svg role="img" aria-label={title} viewBox={`0 0 ${width} ${height + 40}`} className="mt-2 w-full max-w-2xl">
        <title>{title}</title>
        {data.map((d, i) => {
          const h = (d.value / max) * height;
          const x = 30 + i * (barWidth + 6);
          return (
            <g key={d.label}>
              <rect x={x} y={height - h + 10} width={barWidth} height={h} className="fill-brand-600">
                <title>{`${d.label} : ${d.value}`}</title>
              </rect>
              <text x={x + barWidth / 2} y={height - h + 6} textAnchor="middle" className="fill-slate-700 text-[10px]">
                {d.value}
              </text>
              <text x={x + barWidth / 2} y={height + 24} textAnchor="middle" className="fill-slate-500 text-[9px]">
                {d.label}
              </text>
            </g>
          );
        })}
        <line x1={26} y1={height + 10} x2={width - 4} y2={height + 10} className="stroke-slate-300" />
      </svg>
      <table className="sr-only">
        <caption>{title}</caption>
        <tbody>
          {data.map((d) => (
            <tr key={d.label}>
              <th scope="row">{d.label}</th>
              <td>{d.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
