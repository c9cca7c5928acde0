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
        "1:\n"
        ".byte 0\n"
        ".balign 8\n"
        ".global pv_dashboard_html_size\n"
        ".type pv_dashboard_html_size, @object\n"
        "pv_dashboard_html_size:\n"
        ".quad 1b - pv_dashboard_html\n"
        ".previous\n");
