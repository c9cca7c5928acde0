/* The dashboard page of `portvakt_dashboard;` (dashboard.html, built into
 * the binary): one self-contained HTML page, no CDN, no external font,
 * that polls its own location's JSON (`?format=json`, the status document
 * of status.c) every 1.5 s and draws requests/s and p95 per route,
 * upstream servers with health and connection reuse, rate-limit
 * rejections and the host figures. */
#include "report.h"

__asm__(".section .rodata\n"
        ".global pv_dashboard_html\n"
        ".type pv_dashboard_html, @object\n"
        "pv_dashboard_html:\n"
        ".incbin \"src/proxy/dashboard.html\"\n"
        ".global pv_dashboard_html_end\n"
        "pv_dashboard_html_end:\n"
        ".byte 0\n"
        ".previous\n");
