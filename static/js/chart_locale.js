/*
 * The charts' language and clock, shared by the dashboard and the sensor page.
 *
 * The plotly Python package bundles plotly.js with its English locale only, so the
 * French one is registered here: month and day names, the decimal comma and the narrow
 * no-break space between thousands, the mode bar's words. Dates are given to Plotly as
 * Paris wall-clock strings (it knows no time zones), whatever the browser's zone.
 */

export const TZ = "Europe/Paris";

const FR = {
  moduleType: "locale",
  name: "fr",
  dictionary: {
    Autoscale: "Échelle automatique",
    "Box Select": "Sélection rectangulaire",
    "Click to enter Plot title": "Cliquez pour saisir le titre",
    "Compare data on hover": "Comparer les valeurs au survol",
    "Double-click on legend to isolate one trace": "Double-cliquez sur la légende pour isoler une courbe",
    "Double-click to zoom back out": "Double-cliquez pour revenir au zoom initial",
    "Download plot": "Télécharger le graphique",
    "Download plot as a png": "Télécharger le graphique en PNG",
    "Lasso Select": "Sélection au lasso",
    Pan: "Déplacer",
    "Produced with Plotly.js": "Réalisé avec Plotly.js",
    Reset: "Réinitialiser",
    "Reset axes": "Réinitialiser les axes",
    "Reset view": "Réinitialiser la vue",
    "Show closest data on hover": "Valeur la plus proche au survol",
    "Toggle Spike Lines": "Lignes de repère",
    Zoom: "Zoom",
    "Zoom in": "Zoom avant",
    "Zoom out": "Zoom arrière",
  },
  format: {
    days: ["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"],
    shortDays: ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
    months: [
      "janvier", "février", "mars", "avril", "mai", "juin",
      "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ],
    shortMonths: [
      "janv.", "févr.", "mars", "avr.", "mai", "juin",
      "juil.", "août", "sept.", "oct.", "nov.", "déc.",
    ],
    date: "%d/%m/%Y",
    decimal: ",",
    thousands: "\u202f",
  },
};

// The date ticks, day before month in French: Plotly's own put the month first.
function dateTicks(french) {
  const day = french ? "%-d %b" : "%b %-d";
  return [
    { dtickrange: [null, 60000], value: "%H:%M:%S" },
    { dtickrange: [60000, 86400000], value: `%H:%M<br>${day}` },
    { dtickrange: [86400000, "M1"], value: day },
    { dtickrange: ["M1", "M12"], value: "%b %Y" },
    { dtickrange: ["M12", null], value: "%Y" },
  ];
}

let registered = false;

/** Plotly's settings for the page's language: the config's locale and the layout's
 * separators and date formats. */
export function chartLocale(lang) {
  const french = !lang || lang.startsWith("fr");
  if (french && !registered && window.Plotly) {
    window.Plotly.register(FR);
    registered = true;
  }
  return {
    locale: french ? "fr" : "en",
    separators: french ? ",\u202f" : ".,",
    tickformatstops: dateTicks(french),
    hoverformat: french ? "%-d %b %Y, %H:%M:%S" : "%b %-d %Y, %H:%M:%S",
  };
}

const partsFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ,
  hourCycle: "h23",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** Paris wall-clock time of ``ms`` (or a Date) as "YYYY-MM-DD HH:MM:SS.mmm", for Plotly. */
export function parisString(ms) {
  const date = new Date(ms);
  const p = Object.fromEntries(partsFormat.formatToParts(date).map((x) => [x.type, x.value]));
  const millis = String(date.getUTCMilliseconds()).padStart(3, "0");
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}.${millis}`;
}
