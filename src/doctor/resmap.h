/* The residency commands: `portvakt residency` prints the map of a
 * config's scopes and routes (resmap.c); `portvakt doctor --residency`
 * measures each declared upstream server's connect round trip against
 * what its jurisdiction allows (rtt.c). */
#ifndef PV_RESMAP_H
#define PV_RESMAP_H

/* `portvakt residency -c FILE [--json | --dot]`; argv[0] is "residency".
 * 0, 1 for a config that does not load, 3 for a usage error. */
int pv_residency_main(int argc, char **argv);

/* `portvakt doctor --residency -c FILE [--json]`; argv[0] is "doctor".
 * 0 when every server is plausible, 1 when one is WARN, 3 for a usage
 * or config error. */
int pv_doctor_residency_main(int argc, char **argv);

#endif
