/*
 * The page's words, from Django's JavaScript catalogue (/jsi18n/, loaded by base.html
 * before the page's scripts): French is the source language, English its translation
 * (locale/en/LC_MESSAGES/djangojs.po). Without the catalogue, the French stays.
 */

const catalogue = window.django || {};

export function gettext(text) {
  return catalogue.gettext ? catalogue.gettext(text) : text;
}

export function ngettext(singular, plural, count) {
  if (catalogue.ngettext) return catalogue.ngettext(singular, plural, count);
  return count > 1 ? plural : singular;
}

/** Fill a translated text's %(name)s with ``values``. */
export function format(text, values) {
  return text.replace(/%\(([a-z_]+)\)s/g, (_, name) => String(values[name]));
}
