/* Residency data: the assigned ISO 3166-1 alpha-2 codes, the built-in
 * groups (EEA, EU) and a rough place for the jurisdictions gateways and
 * upstreams are most often in. Kept as data so a change of membership or
 * of a number is a change of one line here; a config overrides a group
 * with `residency_group EEA ...` (README, "Data residency"). */
#include "residency.h"

#include <math.h>
#include <string.h>

/* ISO 3166-1 alpha-2, officially assigned codes (249). */
static const char iso_codes[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ "
    "BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
    "DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR "
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY "
    "HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP "
    "KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY "
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ "
    "NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ "
    "TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ "
    "VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/* Membership as it stands since the United Kingdom left the EU on
 * 2020-02-01. EU: the 27 member states (Greece is GR, ISO's code, not
 * the EU's "EL"). EEA: the EU and Iceland, Liechtenstein, Norway. */
const char pv_res_groups_date[] = "2020-02-01";

#define EU27 "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
static const struct {
    const char *name, *codes;
} groups[] = {
    {"EU", EU27},
    {"EEA", EU27 " IS LI NO"},
};

const pv_jurset_t pv_jurset_none;

int pv_jur_code(const char *s)
{
    if (!s || strlen(s) != 2)
        return PV_JUR_NONE;
    char up[3] = {(char)(s[0] & ~0x20), (char)(s[1] & ~0x20), 0};
    if (up[0] < 'A' || up[0] > 'Z' || up[1] < 'A' || up[1] > 'Z')
        return PV_JUR_NONE;
    for (const char *p = iso_codes; *p; p += p[2] ? 3 : 2)
        if (p[0] == up[0] && p[1] == up[1])
            return (up[0] - 'A') * 26 + (up[1] - 'A');
    return PV_JUR_NONE;
}

const char *pv_jur_text(int j, char out[3])
{
    if (j < 0 || j >= PV_JUR_COUNT) {
        memcpy(out, "--", 3);
        return out;
    }
    out[0] = (char)('A' + j / 26);
    out[1] = (char)('A' + j % 26);
    out[2] = '\0';
    return out;
}

const char *pv_res_builtin_group(const char *name)
{
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(groups[i].name, name) == 0)
            return groups[i].codes;
    return NULL;
}

const char pv_jur_places_source[] =
    "centres: Google's DSPL canonical countries.csv "
    "(developers.google.com/public-data/docs/canonical/countries_csv); radii: the rough "
    "distance from that centre within which most of the country's people and hosts are, "
    "set by hand for this table; light in fibre covers about 200 km per ms one way, "
    "so about 100 km per ms of round trip";

/* Centre (latitude, longitude) and radius in km. */
static const pv_jur_place_t places[] = {
    {"AT", 47.516231, 14.550072, 300},   {"BE", 50.503887, 4.469936, 150},
    {"BG", 42.733883, 25.48583, 250},    {"HR", 45.1, 15.2, 300},
    {"CY", 35.126413, 33.429859, 100},   {"CZ", 49.817492, 15.472962, 250},
    {"DK", 56.26392, 9.501785, 250},     {"EE", 58.595272, 25.013607, 200},
    {"FI", 61.92411, 25.748151, 600},    {"FR", 46.227638, 2.213749, 550},
    {"DE", 51.165691, 10.451526, 450},   {"GR", 39.074208, 21.824312, 400},
    {"HU", 47.162494, 19.503304, 250},   {"IE", 53.41291, -8.24389, 250},
    {"IT", 41.87194, 12.56738, 600},     {"LV", 56.879635, 24.603189, 200},
    {"LT", 55.169438, 23.881275, 200},   {"LU", 49.815273, 6.129583, 50},
    {"MT", 35.937496, 14.375416, 30},    {"NL", 52.132633, 5.291266, 150},
    {"PL", 51.919438, 19.145136, 350},   {"PT", 39.399872, -8.224454, 350},
    {"RO", 45.943161, 24.96676, 350},    {"SK", 48.669026, 19.699024, 200},
    {"SI", 46.151241, 14.995463, 120},   {"ES", 40.463667, -3.74922, 550},
    {"SE", 60.128161, 18.643501, 800},   {"IS", 64.963051, -19.020835, 250},
    {"LI", 47.166, 9.555373, 20},        {"NO", 60.472024, 8.468946, 1100},
    {"CH", 46.818188, 8.227512, 200},    {"GB", 55.378051, -3.435973, 500},
    {"US", 37.09024, -95.712891, 2500},  {"CA", 56.130366, -106.346771, 2500},
    {"MX", 23.634501, -102.552784, 1200}, {"BR", -14.235004, -51.92528, 2000},
    {"JP", 36.204824, 138.252924, 900},  {"KR", 35.907757, 127.766922, 250},
    {"CN", 35.86166, 104.195397, 2000},  {"HK", 22.396428, 114.109497, 30},
    {"SG", 1.352083, 103.819836, 30},    {"IN", 20.593684, 78.96288, 1500},
    {"AU", -25.274398, 133.775136, 2000}, {"NZ", -40.900557, 174.885971, 700},
    {"ZA", -30.559482, 22.937506, 800},  {"AE", 23.424076, 53.847818, 300},
    {"IL", 31.046051, 34.851612, 200},   {"TR", 38.963745, 35.243322, 700},
    {"UA", 48.379433, 31.16558, 600},    {"RU", 61.52401, 105.318756, 4000},
};

const pv_jur_place_t *pv_jur_place(int j)
{
    char cc[3];
    pv_jur_text(j, cc);
    for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++)
        if (memcmp(places[i].cc, cc, 2) == 0)
            return &places[i];
    return NULL;
}

double pv_jur_distance_km(const pv_jur_place_t *a, const pv_jur_place_t *b)
{
    const double rad = 3.14159265358979323846 / 180.0;
    double dlat = (b->lat - a->lat) * rad, dlon = (b->lon - a->lon) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(a->lat * rad) * cos(b->lat * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * 6371.0 * asin(sqrt(h < 1 ? h : 1));
}
