// Builds the web UI into the Python package (src/homemeter/web/static/), which homemeter serves.
// No bundler: our ES modules and CSS are copied as they are, each page is the layout around its own
// <main> fragment (so navigation and titles are in the HTML, visible before any script runs), and
// Chart.js is copied from node_modules (pinned in package-lock.json). `npm ci && npm run build`.
import { copyFile, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const out = join(here, "..", "src", "homemeter", "web", "static");

// name: file and module of the page; path: its URL.
export const PAGES = [
  { name: "index", path: "/", title: "Dashboard" },
  { name: "channels", path: "/channels", title: "Channels" },
  { name: "sources", path: "/sources", title: "Sources" },
  { name: "integrations", path: "/integrations", title: "Integrations" },
  { name: "system", path: "/system", title: "System" },
  { name: "logs", path: "/logs", title: "Logs" },
];

const VENDOR = [
  ["chart.js/dist/chart.umd.min.js", "chart.umd.min.js"],
  ["chart.js/LICENSE.md", "chart.js-LICENSE.md"],
];

function nav(current) {
  return PAGES.map((p) => {
    const here = p.name === current.name ? ' aria-current="page"' : "";
    return `<li><a href="${p.path}"${here}>${p.title}</a></li>`;
  }).join("");
}

async function build() {
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, "vendor"), { recursive: true });
  await cp(join(src, "css"), join(out, "css"), { recursive: true });
  await cp(join(src, "js"), join(out, "js"), { recursive: true });
  await copyFile(join(src, "icon.svg"), join(out, "icon.svg"));
  for (const [from, to] of VENDOR) {
    await copyFile(join(here, "node_modules", from), join(out, "vendor", to));
  }
  const layout = await readFile(join(src, "layout.html"), "utf8");
  for (const page of PAGES) {
    const main = await readFile(join(src, "pages", `${page.name}.html`), "utf8");
    const html = layout
      .replaceAll("{{title}}", page.title)
      .replaceAll("{{name}}", page.name)
      .replace("{{nav}}", nav(page))
      .replace("{{main}}", main.trim());
    await writeFile(join(out, `${page.name}.html`), html);
  }
  console.log(`web UI built into ${out}`);
}

await build();
