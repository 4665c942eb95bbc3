/*
 * installdirs.h - where an installed Wharf finds its configuration.
 *
 * A program given no -c (nor WHARF_CONFIG) reads SYSCONFDIR/wharf/wharf.conf
 * when it runs from the directories it was installed to (bindir, sbindir,
 * libexecdir/wharf of the meson prefix) and that file exists. Anywhere else
 * (the build tree: `make run`, the tests; a DESTDIR copy) it keeps the
 * embedded defaults, so that a development tree never picks up the
 * configuration of an installed server. Never reads the file itself.
 */
#ifndef WHARF_BASE_INSTALLDIRS_H
#define WHARF_BASE_INSTALLDIRS_H

/* SYSCONFDIR/wharf/wharf.conf (whether or not it exists). */
const char *installdirs_config_file(void);

/* The configuration an installed program reads by default, or NULL: embedded defaults. */
const char *installdirs_default_config(void);

/*
 * The full wharf command (wharf-admin) into out: LIBEXECDIR/wharf/wharf-admin
 * for an installed program, ../cli/wharf-admin beside it in a build tree
 * (wharfd runs it for the admin API).
 */
struct buf;
void installdirs_admin_program(struct buf *out);

#endif
