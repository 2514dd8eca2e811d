"""Route 53's geolocation codes: continents, countries, subdivisions and the ``*`` default.

The tables are the ones Route 53 documents and lists:

- Continents (AF AN AS EU OC NA SA): API Reference, ``GeoLocation.ContinentCode``.
- Which continent each country belongs to: Developer Guide, "Values specific for geolocation
  records", *Location* ("Here are the countries that Amazon Route 53 associates with each
  continent"). Route 53's assignment is not always the geographic one a reader expects (TR is in
  Europe, CC in Asia, GS and TF in Antarctica), and it, not MaxMind's continent field, decides
  which continent record answers a client.
- Countries Route 53 refuses: BV, CX, EH, HM ("No data is available about IP addresses for these
  countries"), same page.
- Subdivisions: ``ListGeoLocations`` returns the US states plus DC, and the oblasts of Ukraine
  (ISO 3166-2:UA numbers, but "11" for Crimea and "20" for Sevastopol; the API Reference notes
  "Route 53 also supports the country code UA for Ukraine"). No other country has subdivisions.
- Country and subdivision names: as ``ListGeoLocations`` spells them (``GeoLocationDetails``).
- The default location is ``CountryCode = "*"`` (``GeoLocation.CountryCode`` in
  ``ResourceRecordSet``): it answers clients whose location has no record and clients that
  cannot be located.

MaxMind databases use the same seven continent codes and ISO 3166-1 country codes, so a
MaxMind location maps onto these tables directly (see ``fastdns.geo.mmdb``).

Errors follow the service model: a malformed ``GeoLocation`` (ContinentCode together with
CountryCode or SubdivisionCode, a code of the wrong length, an empty structure) is
``InvalidInput`` (HTTP 400); a well-formed location Route 53 does not have is
``NoSuchGeoLocation`` (HTTP 404) from ``GetGeoLocation``, and inside ``ChangeResourceRecordSets``
an ``InvalidChangeBatch`` whose message reads ``Cannot find location: 'country = CA subdivision
= NL'.`` (the text Route 53 returns, seen in octodns/octodns#755).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CONTINENTS",
    "COUNTRIES",
    "COUNTRY_CONTINENT",
    "DEFAULT",
    "DEFAULT_LOCATION",
    "SUBDIVISIONS",
    "UNSUPPORTED_COUNTRIES",
    "GeoLocation",
    "GeoLocationError",
    "InvalidGeoLocation",
    "UnknownGeoLocation",
    "candidate_locations",
    "continent_of",
    "geo_location_details",
    "list_geo_locations",
    "parse_geolocation",
]

DEFAULT = "*"

CONTINENTS: Mapping[str, str] = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}

# Developer Guide, "Values specific for geolocation records" > Location (current revision:
# TR is listed under Europe; an older revision had it under Asia).
_CONTINENT_COUNTRIES: Mapping[str, str] = {
    "AF": "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG "
    "ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    "AN": "AQ GS TF",
    "AS": "AE AF AM AZ BD BH BN BT CC CN GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB LK "
    "MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TM TW UZ VN YE",
    "EU": "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE "
    "LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM TR UA VA XK",
    "NA": "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX "
    "NI PA PM PR SV SX TC TT US VC VG VI",
    "OC": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TL TO TV UM VU WF WS",
    "SA": "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
}

COUNTRY_CONTINENT: Mapping[str, str] = {
    country: continent
    for continent, countries in _CONTINENT_COUNTRIES.items()
    for country in countries.split()
}

# ISO 3166-1 codes Route 53 does not accept: it has no address data for them.
UNSUPPORTED_COUNTRIES = frozenset({"BV", "CX", "EH", "HM"})

# CountryName as ListGeoLocations returns it.
COUNTRIES: Mapping[str, str] = {
    "AD": "Andorra",
    "AE": "United Arab Emirates",
    "AF": "Afghanistan",
    "AG": "Antigua and Barbuda",
    "AI": "Anguilla",
    "AL": "Albania",
    "AM": "Armenia",
    "AO": "Angola",
    "AQ": "Antarctica",
    "AR": "Argentina",
    "AS": "American Samoa",
    "AT": "Austria",
    "AU": "Australia",
    "AW": "Aruba",
    "AX": "Åland",
    "AZ": "Azerbaijan",
    "BA": "Bosnia and Herzegovina",
    "BB": "Barbados",
    "BD": "Bangladesh",
    "BE": "Belgium",
    "BF": "Burkina Faso",
    "BG": "Bulgaria",
    "BH": "Bahrain",
    "BI": "Burundi",
    "BJ": "Benin",
    "BL": "Saint Barthélemy",
    "BM": "Bermuda",
    "BN": "Brunei",
    "BO": "Bolivia",
    "BQ": "Bonaire",
    "BR": "Brazil",
    "BS": "Bahamas",
    "BT": "Bhutan",
    "BW": "Botswana",
    "BY": "Belarus",
    "BZ": "Belize",
    "CA": "Canada",
    "CC": "Cocos [Keeling] Islands",
    "CD": "Congo",
    "CF": "Central African Republic",
    "CG": "Republic of the Congo",
    "CH": "Switzerland",
    "CI": "Ivory Coast",
    "CK": "Cook Islands",
    "CL": "Chile",
    "CM": "Cameroon",
    "CN": "China",
    "CO": "Colombia",
    "CR": "Costa Rica",
    "CU": "Cuba",
    "CV": "Cape Verde",
    "CW": "Curaçao",
    "CY": "Cyprus",
    "CZ": "Czech Republic",
    "DE": "Germany",
    "DJ": "Djibouti",
    "DK": "Denmark",
    "DM": "Dominica",
    "DO": "Dominican Republic",
    "DZ": "Algeria",
    "EC": "Ecuador",
    "EE": "Estonia",
    "EG": "Egypt",
    "ER": "Eritrea",
    "ES": "Spain",
    "ET": "Ethiopia",
    "FI": "Finland",
    "FJ": "Fiji",
    "FK": "Falkland Islands",
    "FM": "Federated States of Micronesia",
    "FO": "Faroe Islands",
    "FR": "France",
    "GA": "Gabon",
    "GB": "United Kingdom",
    "GD": "Grenada",
    "GE": "Georgia",
    "GF": "French Guiana",
    "GG": "Guernsey",
    "GH": "Ghana",
    "GI": "Gibraltar",
    "GL": "Greenland",
    "GM": "Gambia",
    "GN": "Guinea",
    "GP": "Guadeloupe",
    "GQ": "Equatorial Guinea",
    "GR": "Greece",
    "GS": "South Georgia and the South Sandwich Islands",
    "GT": "Guatemala",
    "GU": "Guam",
    "GW": "Guinea-Bissau",
    "GY": "Guyana",
    "HK": "Hong Kong",
    "HN": "Honduras",
    "HR": "Croatia",
    "HT": "Haiti",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IL": "Israel",
    "IM": "Isle of Man",
    "IN": "India",
    "IO": "British Indian Ocean Territory",
    "IQ": "Iraq",
    "IR": "Iran",
    "IS": "Iceland",
    "IT": "Italy",
    "JE": "Jersey",
    "JM": "Jamaica",
    "JO": "Hashemite Kingdom of Jordan",
    "JP": "Japan",
    "KE": "Kenya",
    "KG": "Kyrgyzstan",
    "KH": "Cambodia",
    "KI": "Kiribati",
    "KM": "Comoros",
    "KN": "Saint Kitts and Nevis",
    "KP": "North Korea",
    "KR": "Republic of Korea",
    "KW": "Kuwait",
    "KY": "Cayman Islands",
    "KZ": "Kazakhstan",
    "LA": "Laos",
    "LB": "Lebanon",
    "LC": "Saint Lucia",
    "LI": "Liechtenstein",
    "LK": "Sri Lanka",
    "LR": "Liberia",
    "LS": "Lesotho",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "LY": "Libya",
    "MA": "Morocco",
    "MC": "Monaco",
    "MD": "Republic of Moldova",
    "ME": "Montenegro",
    "MF": "Saint Martin",
    "MG": "Madagascar",
    "MH": "Marshall Islands",
    "MK": "Macedonia",
    "ML": "Mali",
    "MM": "Myanmar [Burma]",
    "MN": "Mongolia",
    "MO": "Macao",
    "MP": "Northern Mariana Islands",
    "MQ": "Martinique",
    "MR": "Mauritania",
    "MS": "Montserrat",
    "MT": "Malta",
    "MU": "Mauritius",
    "MV": "Maldives",
    "MW": "Malawi",
    "MX": "Mexico",
    "MY": "Malaysia",
    "MZ": "Mozambique",
    "NA": "Namibia",
    "NC": "New Caledonia",
    "NE": "Niger",
    "NF": "Norfolk Island",
    "NG": "Nigeria",
    "NI": "Nicaragua",
    "NL": "Netherlands",
    "NO": "Norway",
    "NP": "Nepal",
    "NR": "Nauru",
    "NU": "Niue",
    "NZ": "New Zealand",
    "OM": "Oman",
    "PA": "Panama",
    "PE": "Peru",
    "PF": "French Polynesia",
    "PG": "Papua New Guinea",
    "PH": "Philippines",
    "PK": "Pakistan",
    "PL": "Poland",
    "PM": "Saint Pierre and Miquelon",
    "PN": "Pitcairn Islands",
    "PR": "Puerto Rico",
    "PS": "Palestine",
    "PT": "Portugal",
    "PW": "Palau",
    "PY": "Paraguay",
    "QA": "Qatar",
    "RE": "Réunion",
    "RO": "Romania",
    "RS": "Serbia",
    "RU": "Russia",
    "RW": "Rwanda",
    "SA": "Saudi Arabia",
    "SB": "Solomon Islands",
    "SC": "Seychelles",
    "SD": "Sudan",
    "SE": "Sweden",
    "SG": "Singapore",
    "SH": "Saint Helena",
    "SI": "Slovenia",
    "SJ": "Svalbard and Jan Mayen",
    "SK": "Slovakia",
    "SL": "Sierra Leone",
    "SM": "San Marino",
    "SN": "Senegal",
    "SO": "Somalia",
    "SR": "Suriname",
    "SS": "South Sudan",
    "ST": "São Tomé and Príncipe",
    "SV": "El Salvador",
    "SX": "Sint Maarten",
    "SY": "Syria",
    "SZ": "Swaziland",
    "TC": "Turks and Caicos Islands",
    "TD": "Chad",
    "TF": "French Southern Territories",
    "TG": "Togo",
    "TH": "Thailand",
    "TJ": "Tajikistan",
    "TK": "Tokelau",
    "TL": "East Timor",
    "TM": "Turkmenistan",
    "TN": "Tunisia",
    "TO": "Tonga",
    "TR": "Turkey",
    "TT": "Trinidad and Tobago",
    "TV": "Tuvalu",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "UA": "Ukraine",
    "UG": "Uganda",
    "UM": "U.S. Minor Outlying Islands",
    "US": "United States",
    "UY": "Uruguay",
    "UZ": "Uzbekistan",
    "VA": "Vatican City",
    "VC": "Saint Vincent and the Grenadines",
    "VE": "Venezuela",
    "VG": "British Virgin Islands",
    "VI": "U.S. Virgin Islands",
    "VN": "Vietnam",
    "VU": "Vanuatu",
    "WF": "Wallis and Futuna",
    "WS": "Samoa",
    "XK": "Kosovo",
    "YE": "Yemen",
    "YT": "Mayotte",
    "ZA": "South Africa",
    "ZM": "Zambia",
    "ZW": "Zimbabwe",
}

# SubdivisionName as ListGeoLocations returns it, per country that has subdivisions.
SUBDIVISIONS: Mapping[str, Mapping[str, str]] = {
    "UA": {
        "05": "Vinnytska oblast",
        "07": "Volynska oblast",
        "09": "Luhanska oblast",
        "11": "Crimea",
        "12": "Dnipropetrovska oblast",
        "14": "Donetska oblast",
        "18": "Zhytomyrska oblast",
        "20": "Sevastopol",
        "21": "Zakarpatska oblast",
        "23": "Zaporizka oblast",
        "26": "Ivano-Frankivska oblast",
        "30": "Kyiv",
        "32": "Kyivska oblast",
        "35": "Kirovohradska oblast",
        "46": "Lvivska oblast",
        "48": "Mykolaivska oblast",
        "51": "Odeska oblast",
        "53": "Poltavska oblast",
        "56": "Rivnenska oblast",
        "59": "Sumska oblast",
        "61": "Ternopilska oblast",
        "63": "Kharkivska oblast",
        "65": "Khersonska oblast",
        "68": "Khmelnytska oblast",
        "71": "Cherkaska oblast",
        "74": "Chernihivska oblast",
        "77": "Chernivetska oblast",
    },
    "US": {
        "AK": "Alaska",
        "AL": "Alabama",
        "AR": "Arkansas",
        "AZ": "Arizona",
        "CA": "California",
        "CO": "Colorado",
        "CT": "Connecticut",
        "DC": "District of Columbia",
        "DE": "Delaware",
        "FL": "Florida",
        "GA": "Georgia",
        "HI": "Hawaii",
        "IA": "Iowa",
        "ID": "Idaho",
        "IL": "Illinois",
        "IN": "Indiana",
        "KS": "Kansas",
        "KY": "Kentucky",
        "LA": "Louisiana",
        "MA": "Massachusetts",
        "MD": "Maryland",
        "ME": "Maine",
        "MI": "Michigan",
        "MN": "Minnesota",
        "MO": "Missouri",
        "MS": "Mississippi",
        "MT": "Montana",
        "NC": "North Carolina",
        "ND": "North Dakota",
        "NE": "Nebraska",
        "NH": "New Hampshire",
        "NJ": "New Jersey",
        "NM": "New Mexico",
        "NV": "Nevada",
        "NY": "New York",
        "OH": "Ohio",
        "OK": "Oklahoma",
        "OR": "Oregon",
        "PA": "Pennsylvania",
        "RI": "Rhode Island",
        "SC": "South Carolina",
        "SD": "South Dakota",
        "TN": "Tennessee",
        "TX": "Texas",
        "UT": "Utah",
        "VA": "Virginia",
        "VT": "Vermont",
        "WA": "Washington",
        "WI": "Wisconsin",
        "WV": "West Virginia",
        "WY": "Wyoming",
    },
}

_FIELDS = ("ContinentCode", "CountryCode", "SubdivisionCode")
_LENGTHS = {"ContinentCode": (2, 2), "CountryCode": (1, 2), "SubdivisionCode": (1, 3)}


class GeoLocationError(ValueError):
    """A GeoLocation Route 53 would refuse; ``code`` and ``status`` are its API error."""

    code = "InvalidInput"
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidGeoLocation(GeoLocationError):
    """A malformed GeoLocation structure (``InvalidInput``, HTTP 400)."""


class UnknownGeoLocation(GeoLocationError):
    """A well-formed location Route 53 does not have.

    ``GetGeoLocation`` answers it with ``NoSuchGeoLocation`` (HTTP 404, the code and status
    here); ``ChangeResourceRecordSets`` puts ``message`` ("Cannot find location: ...") into an
    ``InvalidChangeBatch``.
    """

    code = "NoSuchGeoLocation"
    status = 404


@dataclass(frozen=True)
class GeoLocation:
    """One Route 53 location: a continent, a country, a country's subdivision or the default.

    Exactly one shape holds: ``continent`` alone; ``country`` alone (``"*"`` is the default);
    ``country`` and ``subdivision``. Build them with ``parse_geolocation`` or
    ``candidate_locations`` so that they are valid.
    """

    continent: str | None = None
    country: str | None = None
    subdivision: str | None = None

    @property
    def kind(self) -> str:
        """``"subdivision"``, ``"country"``, ``"continent"`` or ``"default"``."""
        if self.subdivision is not None:
            return "subdivision"
        if self.country == DEFAULT:
            return "default"
        return "country" if self.country is not None else "continent"

    def to_api(self) -> dict[str, str]:
        """The ``GeoLocation`` structure of the API (only the codes that are set)."""
        out = {}
        for field, value in zip(
            _FIELDS, (self.continent, self.country, self.subdivision), strict=True
        ):
            if value is not None:
                out[field] = value
        return out

    def describe(self) -> str:
        """Route 53's way of naming a location in errors: ``country = CA subdivision = NL``."""
        parts = []
        for label, value in (
            ("continent", self.continent),
            ("country", self.country),
            ("subdivision", self.subdivision),
        ):
            if value is not None:
                parts.append(f"{label} = {value}")
        return " ".join(parts)


DEFAULT_LOCATION = GeoLocation(country=DEFAULT)


def parse_geolocation(data: Mapping[str, object]) -> GeoLocation:
    """Validate an API ``GeoLocation`` dict and return it as a ``GeoLocation``.

    Codes are compared in upper case (``"us"`` is ``"US"``). Raises ``InvalidGeoLocation`` for a
    malformed structure and ``UnknownGeoLocation`` for a location Route 53 does not list.
    """
    if not isinstance(data, Mapping):
        raise InvalidGeoLocation("GeoLocation must be a structure")
    extra = sorted(str(key) for key in data if key not in _FIELDS)
    if extra:
        raise InvalidGeoLocation(f"GeoLocation has unknown field {extra[0]!r}")
    codes: dict[str, str] = {}
    for field in _FIELDS:
        value = data.get(field)
        if value is None:
            continue
        low, high = _LENGTHS[field]
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise InvalidGeoLocation(
                f"GeoLocation {field} {value!r} must be a string of {low} to {high} characters"
            )
        codes[field] = value.upper()
    if not codes:
        raise InvalidGeoLocation("GeoLocation needs a ContinentCode or a CountryCode")
    if "ContinentCode" in codes and len(codes) > 1:
        raise InvalidGeoLocation(
            "GeoLocation takes a ContinentCode, or a CountryCode with an optional "
            "SubdivisionCode, not both"
        )
    if "SubdivisionCode" in codes and "CountryCode" not in codes:
        raise InvalidGeoLocation("GeoLocation SubdivisionCode needs a CountryCode")
    location = GeoLocation(
        codes.get("ContinentCode"), codes.get("CountryCode"), codes.get("SubdivisionCode")
    )
    if not _exists(location):
        raise UnknownGeoLocation(f"Cannot find location: '{location.describe()}'.")
    return location


def _exists(location: GeoLocation) -> bool:
    if location.continent is not None:
        return location.continent in CONTINENTS
    if location.country == DEFAULT:
        return location.subdivision is None
    if location.country not in COUNTRIES:
        return False
    if location.subdivision is None:
        return True
    return location.subdivision in SUBDIVISIONS.get(location.country, {})


def continent_of(country: str | None) -> str | None:
    """The continent Route 53 puts ``country`` in, or None for a code it does not list."""
    return COUNTRY_CONTINENT.get(country) if country is not None else None


def candidate_locations(
    continent: str | None, country: str | None = None, subdivision: str | None = None
) -> tuple[GeoLocation, ...]:
    """The locations that match a client, most specific first, always ending with the default.

    This is the order Route 53 tries records in (Developer Guide, "Values specific for
    geolocation records": state, then country, then continent, then ``*``). The client's
    continent is Route 53's continent of ``country`` when Route 53 lists the country, else
    ``continent`` as given (a MaxMind record with a continent but no country). A subdivision
    counts only under a country that has it in ``SUBDIVISIONS``.
    """
    out = []
    if country is not None and country in COUNTRIES:
        if subdivision is not None and subdivision in SUBDIVISIONS.get(country, {}):
            out.append(GeoLocation(country=country, subdivision=subdivision))
        out.append(GeoLocation(country=country))
        continent = COUNTRY_CONTINENT[country]
    if continent is not None and continent in CONTINENTS:
        out.append(GeoLocation(continent=continent))
    out.append(DEFAULT_LOCATION)
    return tuple(out)


def geo_location_details(location: GeoLocation) -> dict[str, str]:
    """``GeoLocationDetails`` for ``location`` (codes and names, as GetGeoLocation answers)."""
    if location.continent is not None:
        return {
            "ContinentCode": location.continent,
            "ContinentName": CONTINENTS[location.continent],
        }
    if location.country == DEFAULT:
        return {"CountryCode": DEFAULT, "CountryName": "Default"}
    assert location.country is not None
    out = {"CountryCode": location.country, "CountryName": COUNTRIES[location.country]}
    if location.subdivision is not None:
        out["SubdivisionCode"] = location.subdivision
        out["SubdivisionName"] = SUBDIVISIONS[location.country][location.subdivision]
    return out


def list_geo_locations() -> list[dict[str, str]]:
    """Every location in ``ListGeoLocations`` order.

    The default first, then countries by code, each followed by its subdivisions by code, then
    continents by code ("Countries are listed first, and continents are listed last", API
    Reference, ListGeoLocations).
    """
    out = [geo_location_details(DEFAULT_LOCATION)]
    for country in sorted(COUNTRIES):
        out.append(geo_location_details(GeoLocation(country=country)))
        for subdivision in sorted(SUBDIVISIONS.get(country, {})):
            out.append(geo_location_details(GeoLocation(country=country, subdivision=subdivision)))
    out.extend(geo_location_details(GeoLocation(continent=code)) for code in sorted(CONTINENTS))
    return out
