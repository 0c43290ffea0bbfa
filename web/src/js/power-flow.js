// Where the power goes, from one meter-values array (rest-api.md 8, the device's dashboard rules):
// grid = sum of grid channels (+ import, - export); solar = |sum of pv channels|; storage = the
// inverter channels if there are any, else the battery channels (+ discharge, - charge);
// home = grid + solar + storage, or the sum of the loads when no channel measures a source;
// loads = load channels summed per group label; "Other" = home - loads (unmetered consumption).

const sum = (list) => list.reduce((total, c) => total + c.data.activePower, 0);

export function powerFlow(values) {
  const by = (role) => values.filter((c) => c.role === role);
  const grid = by("grid");
  const pv = by("pv");
  const storage = by("inverter").length ? by("inverter") : by("battery");
  const loadChannels = by("load");
  const groups = new Map();
  for (const c of loadChannels) {
    const group = groups.get(c.groupLabel) || { name: c.groupLabel, power: 0, channels: [] };
    group.power += c.data.activePower;
    group.channels.push(c.label);
    groups.set(c.groupLabel, group);
  }
  // A group of one channel is shown by the channel's label, which users recognise.
  const loads = [...groups.values()].map((g) => ({ ...g, name: g.channels.length === 1 ? g.channels[0] : g.name }));
  const loadPower = sum(loadChannels);
  const hasSource = grid.length + pv.length + storage.length > 0;
  const flow = {
    grid: grid.length ? sum(grid) : null,
    solar: pv.length ? Math.abs(sum(pv)) : null,
    storage: storage.length ? sum(storage) : null,
  };
  const home = hasSource ? (flow.grid ?? 0) + (flow.solar ?? 0) + (flow.storage ?? 0) : loadPower;
  const other = hasSource ? home - loadPower : 0;
  loads.sort((a, b) => b.power - a.power);
  return { ...flow, home, loads, other: loadChannels.length || hasSource ? other : null };
}
