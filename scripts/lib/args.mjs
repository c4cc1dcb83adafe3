// Command-line flags of the scripts under scripts/: one loop instead of a copy in every script.
//
//   const o = { repeats: 3, json: false };
//   parseFlags(argv, {
//     '--repeats': (v) => (o.repeats = Number(v)),   // a flag that takes the next argument
//   }, {
//     switches: { '--json': () => (o.json = true) }, // a flag on its own
//     positional: (a) => files.push(a),              // optional: arguments not starting with --
//   });
//
// Throws `unknown argument X` for anything else and `X needs a value` when a flag that takes a
// value comes last. Checking the values (ranges, known names) stays with each script.

/**
 * @param {string[]} argv the arguments after the script's path
 * @param {Record<string, (value: string) => void>} values flags that take a value
 * @param {{ switches?: Record<string, () => void>, positional?: (arg: string) => void }} [more]
 */
export function parseFlags(argv, values, more = {}) {
  const switches = more.switches ?? {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (Object.hasOwn(switches, a)) {
      switches[a]();
    } else if (Object.hasOwn(values, a)) {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      values[a](argv[++i]);
    } else if (more.positional && !a.startsWith('--')) {
      more.positional(a);
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
}
