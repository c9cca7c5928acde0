/* The rewrite module's script engine: runs the scripts config/rewrite_conf.c
 * compiled for a server (server rewrite phase) and a location (rewrite
 * phase), and sends a request whose URI changed back to the location
 * search. */
#ifndef PV_SCRIPT_H
#define PV_SCRIPT_H

/* Register the server rewrite and rewrite phase handlers (start-up). */
void pv_script_init(void);

#endif
