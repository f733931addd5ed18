"""WGS84 -> ETRS89-LAEA (EPSG:3035) and INSPIRE/Zensus grid cell ids, computed independently of
teuto (EPSG Guidance Note 7-2, method 9820), for the integration tests that check cells.
Standard library only."""
import math


GRS80_A = 6378137.0
GRS80_F = 1 / 298.257222101
E2 = GRS80_F * (2 - GRS80_F)
ECC = math.sqrt(E2)
PHI0 = math.radians(52.0)
LAM0 = math.radians(10.0)
FE, FN = 4321000.0, 3210000.0


def _q(phi):
    s = math.sin(phi)
    return (1 - E2) * (s / (1 - E2 * s * s) - (1 / (2 * ECC)) * math.log((1 - ECC * s) / (1 + ECC * s)))


QP = _q(math.pi / 2)
BETA0 = math.asin(_q(PHI0) / QP)
RQ = GRS80_A * math.sqrt(QP / 2)
D_ = GRS80_A * (math.cos(PHI0) / math.sqrt(1 - E2 * math.sin(PHI0) ** 2)) / (RQ * math.cos(BETA0))


def laea(lat, lon):
    """WGS84 degrees -> (E, N) metres in EPSG:3035."""
    beta = math.asin(_q(math.radians(lat)) / QP)
    dl = math.radians(lon) - LAM0
    b = RQ * math.sqrt(2 / (1 + math.sin(BETA0) * math.sin(beta) + math.cos(BETA0) * math.cos(beta) * math.cos(dl)))
    e = FE + (b * D_) * math.cos(beta) * math.sin(dl)
    n = FN + (b / D_) * (math.cos(BETA0) * math.sin(beta) - math.sin(BETA0) * math.cos(beta) * math.cos(dl))
    return e, n


def cell_of(lat, lon, size=100):
    e, n = laea(lat, lon)
    return "CRS3035RES%dmN%dE%d" % (size, math.floor(n / size) * size, math.floor(e / size) * size)


def near_edge(lat, lon, size=100, margin=0.001):
    e, n = laea(lat, lon)
    return any(min(v % size, size - v % size) < margin for v in (e, n))


def inverse(e_want, n_want, lat=52.0, lon=8.5):
    """Newton on laea(): the position of a given (E, N)."""
    for _ in range(30):
        e, n = laea(lat, lon)
        d = 1e-7
        e1, n1 = laea(lat + d, lon)
        e2, n2 = laea(lat, lon + d)
        a, b, c, dd = (e1 - e) / d, (e2 - e) / d, (n1 - n) / d, (n2 - n) / d
        det = a * dd - b * c
        rx, ry = e_want - e, n_want - n
        lat += (dd * rx - b * ry) / det
        lon += (-c * rx + a * ry) / det
        if abs(rx) < 1e-6 and abs(ry) < 1e-6:
            break
    return lat, lon


def cell_centre(lat, lon, size=100):
    e, n = laea(lat, lon)
    return inverse(math.floor(e / size) * size + size / 2, math.floor(n / size) * size + size / 2, lat, lon)
