// Numbers, energies and times as the pages show them (the browser's locale for digits).

const nf = (digits) => new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
const cache = new Map();
export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!cache.has(digits)) cache.set(digits, nf(digits));
  return cache.get(digits).format(value);
}

export function power(watts) {
  if (watts === null || watts === undefined) return "–";
  return Math.abs(watts) >= 1000 ? `${number(watts / 1000, 2)} kW` : `${number(watts, 0)} W`;
}

export function energy(wh) {
  if (wh === null || wh === undefined) return "–";
  return Math.abs(wh) >= 1000 ? `${number(wh / 1000, 2)} kWh` : `${number(wh, 0)} Wh`;
}

export function percent(fraction) {
  return fraction === null || fraction === undefined || !Number.isFinite(fraction) ? "–" : `${number(fraction * 100, 0)} %`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${number(n, i ? 1 : 0)} ${units[i]}`;
}

export function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60), ss = seconds % 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

// "12 s ago" for a past time (Date, ISO string or epoch ms).
export function ago(when, now = Date.now()) {
  const t = when instanceof Date ? when.getTime() : typeof when === "string" ? Date.parse(when) : when;
  if (!Number.isFinite(t)) return "–";
  const s = (now - t) / 1000;
  return s < 1 ? "just now" : `${duration(s)} ago`;
}

export function dateTime(when) {
  const d = when instanceof Date ? when : new Date(when);
  return Number.isNaN(d.getTime()) ? "–" : d.toLocaleString();
}

// "useSsl" -> "Use ssl", "groupLabel" -> "Group label".
export function humanize(key) {
  const words = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]+/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
