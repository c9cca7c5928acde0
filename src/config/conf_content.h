/* The content settings inside a location's configuration: static files
 * (root, alias, index, try_files, autoindex, types), compression (gzip,
 * brotli, gzip_static) and the response cache. Included by conf.h, which
 * defines what they refer to. */
#ifndef PV_CONF_CONTENT_H
#define PV_CONF_CONTENT_H

/* One `types` entry: a file name extension and its MIME type. */
typedef struct pv_mime_s {
    pv_str_t ext;               /* lowercase, without the dot */
    pv_str_t type;
} pv_mime_t;

/* try_files' last argument */
enum { PV_TRY_URI = 0, PV_TRY_CODE, PV_TRY_NAMED };

/* The static, index, autoindex and try_files settings (NGINX's core
 * module's root/alias/types and the modules serving files). Unset values
 * are PV_UNSET / NULL. */
typedef struct pv_static_conf_s {
    pv_cv_t *root;              /* root or alias (relative: against the prefix) */
    int alias;                  /* the value is an alias: it replaces the location's name */
    size_t alias_len;           /* alias: bytes of the URI it replaces (PV_ALIAS_REGEX: all) */
    int root_set;               /* root/alias given at this level */
    pv_cv_t *index;             /* index files, in order */
    int nindex;
    pv_cv_t *try_files;         /* try_files' arguments but the last (a trailing '/' dropped) */
    uint8_t *try_dir;           /* 1 for each that ended in '/': it must be a directory */
    int ntry;
    pv_str_t try_last;          /* try_files' last: a URI, "=CODE" or "@name" */
    int try_kind;               /* PV_TRY_* */
    int try_code;               /* PV_TRY_CODE: the status */
    pv_cv_t try_uri;            /* PV_TRY_URI: the URI, compiled */
    pv_conf_src_t try_src;      /* the try_files line */
    pv_mime_t *types;           /* sorted by extension; NULL = inherit */
    int ntypes;
    pv_str_t default_type;      /* p NULL = inherit; default text/plain */
    int etag;                   /* default on */
    int if_modified_since;      /* PV_IMS_*; default exact */
    int max_ranges;             /* default unlimited (-1 after merging is INT_MAX) */
    int sendfile;               /* default off */
    int64_t sendfile_max_chunk; /* default 2m */
    int64_t postpone_output;    /* default 1460: less waits for more when more is coming */
    int output_bufs_num;        /* output_buffers; default 2 32k */
    int64_t output_bufs_size;
    int tcp_nopush;             /* default off */
    int64_t directio;           /* 0 = off */
    int aio;                    /* PV_AIO_*; default threads (NGINX: off) */
    int autoindex;              /* default off */
    int autoindex_format;       /* PV_AUTOINDEX_*; default html */
    int autoindex_exact_size;   /* default on */
    int autoindex_localtime;    /* default off */
    int log_not_found;          /* default on */
    int flv;                    /* flv: this location serves .flv pseudo-streaming (not inherited) */
    int disable_symlinks;       /* PV_SYMLINKS_*; default off */
    pv_cv_t symlinks_from;      /* from=: the part of the path not checked */
    int has_symlinks_from;
    int types_hash_max_size;    /* accepted (they size NGINX's hash) */
    int types_hash_bucket_size;
    int open_file_cache;        /* max entries; 0 = off */
    int open_file_cache_id;     /* which open_file_cache directive: each has its own entries */
    int64_t open_file_cache_inactive; /* ms; default 60s */
    int64_t open_file_cache_valid;    /* ms; default 60s */
    int open_file_cache_min_uses;     /* default 1 */
    int open_file_cache_errors;       /* default off */
} pv_static_conf_t;

#define PV_ALIAS_REGEX ((size_t)-1) /* alias in a regex location: the whole path */
enum { PV_IMS_OFF = 0, PV_IMS_EXACT, PV_IMS_BEFORE };
enum { PV_AIO_OFF = 0, PV_AIO_ON, PV_AIO_THREADS };
enum { PV_AUTOINDEX_HTML = 0, PV_AUTOINDEX_JSON, PV_AUTOINDEX_XML, PV_AUTOINDEX_JSONP };
enum { PV_SYMLINKS_OFF = 0, PV_SYMLINKS_ON, PV_SYMLINKS_IF_NOT_OWNER };

/* gzip_static */
enum { PV_GZ_STATIC_OFF = 0, PV_GZ_STATIC_ON, PV_GZ_STATIC_ALWAYS };

/* gzip_proxied bits (NGINX's NGX_HTTP_GZIP_PROXIED_*) */
#define PV_GZ_PROXIED_OFF 0x0002
#define PV_GZ_PROXIED_EXPIRED 0x0004
#define PV_GZ_PROXIED_NO_CACHE 0x0008
#define PV_GZ_PROXIED_NO_STORE 0x0010
#define PV_GZ_PROXIED_PRIVATE 0x0020
#define PV_GZ_PROXIED_NO_LM 0x0040
#define PV_GZ_PROXIED_NO_ETAG 0x0080
#define PV_GZ_PROXIED_AUTH 0x0100
#define PV_GZ_PROXIED_ANY 0x0200

/* A list of MIME types for gzip_types / brotli_types: lowercased, without
 * parameters, text/html always first; any set: "*". */
typedef struct pv_mime_list_s {
    pv_str_t *types;
    int ntypes;
    int any;
} pv_mime_list_t;

/* The compression directives (gzip, brotli). Unset values are PV_UNSET /
 * NULL, merged down like the others. */
typedef struct pv_zip_conf_s {
    int gzip;                   /* gzip; default off */
    pv_mime_list_t *gzip_types; /* gzip_types; default text/html */
    int gzip_proxied;           /* PV_GZ_PROXIED_* bits; default off */
    int gzip_vary;              /* gzip_vary; default off */
    int gzip_comp_level;        /* 1..9; default 1 */
    int64_t gzip_min_length;    /* default 20 */
    int gzip_http_version;      /* 10 or 11; default 11 */
    pv_regex_t **gzip_disable;  /* gzip_disable regexes (User-Agent); NULL = inherit */
    int ngzip_disable;
    int gzip_disable_msie6;     /* gzip_disable msie6 */
    int gzip_bufs_num;          /* gzip_buffers; default 32 4k */
    int64_t gzip_bufs_size;
    int gunzip;                 /* gunzip; default off */
    int gzip_static;            /* PV_GZ_STATIC_*; default off */
    int gunzip_bufs_num;        /* gunzip_buffers; default 32 4k */
    int64_t gunzip_bufs_size;
    int brotli;                 /* brotli; default off */
    pv_mime_list_t *brotli_types; /* brotli_types; default text/html */
    int brotli_comp_level;      /* 0..11; default 6 */
    int64_t brotli_min_length;  /* default 20 */
} pv_zip_conf_t;

/* The SSI directives (ngx_http_ssi_module). Unset: PV_UNSET / NULL. */
typedef struct pv_ssi_conf_s {
    int enable;                 /* ssi; default off */
    int silent_errors;          /* ssi_silent_errors; default off */
    int last_modified;          /* ssi_last_modified; default off */
    int ignore_recycled;        /* ssi_ignore_recycled_buffers; default off (no effect) */
    int64_t min_file_chunk;     /* ssi_min_file_chunk; default 1k (no effect) */
    int64_t value_len;          /* ssi_value_length; default 256 */
    pv_mime_list_t *types;      /* ssi_types; default text/html */
} pv_ssi_conf_t;

/* The addition directives (ngx_http_addition_filter_module). */
typedef struct pv_add_conf_s {
    pv_str_t before;            /* add_before_body URI; p NULL: unset, len 0: none */
    pv_str_t after;             /* add_after_body URI */
    pv_mime_list_t *types;      /* addition_types; default text/html */
    pv_conf_src_t before_src, after_src; /* where they were set (the residency check's routes) */
} pv_add_conf_t;

/* The mirror directives (ngx_http_mirror_module). A level with `mirror`
 * lines (or `mirror off`) replaces the inherited list whole. */
typedef struct pv_mirror_conf_s {
    pv_str_t *uris;             /* mirror URIs, in order, taken literally */
    pv_conf_src_t *srcs;        /* each one's line */
    int n;                      /* 0: none (off, or never set) */
    int set;                    /* mirror given at this level (off included) */
    int request_body;           /* mirror_request_body; default on */
} pv_mirror_conf_t;

/* proxy_cache_path: a cache on disk and the keys zone shared by every
 * worker (http/fcache.h keeps it across reloads). */
typedef struct pv_cache_path_s {
    const char *name;          /* keys_zone name */
    const char *path;          /* the directory, absolute */
    int levels[3];             /* levels=1:2: characters per directory level */
    int nlevels;
    int64_t size;              /* keys_zone size, bytes */
    int64_t inactive;          /* ms an entry not asked for is kept; default 10m */
    int64_t max_size;          /* bytes the files may take; 0: no limit */
    int64_t min_free;          /* bytes the file system keeps free; 0: no limit */
    int use_temp_path;         /* default on: entries are written under proxy_temp_path */
    pv_conf_src_t src;
    void *impl;                /* pv_fcache_t, kept across reloads */
    int index;                 /* in pv_http_conf_t.caches (the metrics' slot) */
    int fastcgi;               /* made by fastcgi_cache_path: fastcgi_cache's, not proxy_cache's */
} pv_cache_path_t;

/* One proxy_cache_valid line: how long a status is fresh. */
typedef struct pv_cache_valid_s {
    int status;                /* 0: any */
    int64_t ms;
} pv_cache_valid_t;

/* The HTTP side's zone maker and its release, registered before any
 * config is loaded (http/fcache.c); a loader without them makes none. */
void pv_conf_cache_hooks(void *(*acquire)(const pv_cache_path_t *cp), void (*release)(void *impl));

/* proxy_cache_use_stale: PV_NEXT_F_* conditions plus updating */
#define PV_STALE_UPDATING 0x1000

/* The proxy_cache_* directives of a location, and (the same fields)
 * its fastcgi_cache_* ones. */
typedef struct pv_pcache_conf_s {
    pv_cache_path_t *cache;    /* proxy_cache ZONE; NULL: off */
    int cache_set;             /* proxy_cache given at this level (off too) */
    const char *cache_name;    /* the zone named, resolved at the end of the file */
    pv_cv_t *cache_cv;         /* proxy_cache with variables: the zone's name per request ("" or off: none) */
    pv_conf_src_t cache_src;
    pv_cv_t *key;              /* proxy_cache_key; NULL = inherit, default $scheme$proxy_host$request_uri */
    int key_auth;              /* the key names $http_authorization: it separates users */
    int key_default;           /* no proxy_cache_key was given: NGINX's own key (pcache_sub.c) */
    pv_cache_valid_t *valid;   /* proxy_cache_valid lines; NULL = inherit */
    int nvalid;
    unsigned methods;          /* PV_METHOD_* bits; GET and HEAD always; PV_UNSET inherits */
    int methods_set;
    int64_t min_uses;          /* default 1 */
    int64_t max_range_offset;  /* proxy_cache_max_range_offset; default none (INT64_MAX) */
    pv_cv_t *bypass;           /* proxy_cache_bypass values; NULL = inherit */
    int nbypass;
    pv_cv_t *no_cache;         /* proxy_no_cache values; NULL = inherit */
    int nno_cache;
    int use_stale;             /* PV_NEXT_F_* | PV_STALE_UPDATING; default off */
    int lock;                  /* default off */
    int64_t lock_timeout;      /* default 5s */
    int64_t lock_age;          /* default 5s */
    int revalidate;            /* default off */
    int convert_head;          /* default on: a HEAD is asked for as GET, and stored */
    int background_update;     /* default off: a stale answer (updating) while a subrequest refreshes */
    pv_cv_t *purge;            /* proxy_cache_purge values (NGINX Plus); NULL = inherit */
    int npurge;
} pv_pcache_conf_t;

/* Whether a location has proxy_cache (a zone, or variables naming one). */
#define PV_PCACHE_ON(pc) ((pc)->cache != NULL || (pc)->cache_cv != NULL)

#endif
