/* runtime/console.h: the console channel. Renders one VM effect as a WhatsApp user would
 * see it, as plain text: used by `flowc test --verbose` and by the REPL. Owns no state and
 * does no I/O beyond writing to the stream it is given.
 *
 * What it prints (continuation lines are indented by five spaces):
 *   bot: Hi Ana!                       a text message
 *   bot: What can we help with?        reply buttons, numbered
 *        [1] Installation
 *   bot: Choose a currency             a list: its button label in (), sections, rows
 *        (Currencies)
 *        [1] US dollar - Paid in USD
 *   bot: [image: URL caption]          media; [template: NAME (lang) params]; forms as
 *   bot: [form: NAME - CTA]            their body, then [form: NAME - CTA]
 *     » handoff to sales: note         what the user does not see as a message:
 *     » conversation ended             handoff, end, actions, undo, remember, timers, audit
 */
#ifndef FV_CONSOLE_H
#define FV_CONSOLE_H

#include <stdio.h>

#include "flowvm.h"

/* Writes the effect, one or more lines, each ending in a newline. */
void fv_console_render(FILE *out, const FvEffect *fx);
/* The same; a form also lists the fields its reply brings, with their types, as the
 * program's flow declares them (its forms' Flow JSON):
 *        fields: full_name text, panels number, battery bool */
void fv_console_render_in(FILE *out, const FvEffect *fx, const FvProgram *p, int flow);

#endif
