package geo

import "math"

// earthRadius is the mean Earth radius (IUGG) in km: haversine on a sphere is within 0.5% of
// the ellipsoid, far finer than a datacenter choice needs.
const earthRadius = 6371.0088

// Distance is the great-circle distance in km between two points given in degrees (haversine,
// which stays accurate for the short distances where nearby datacenters differ).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	p1, p2 := lat1*rad, lat2*rad
	dp, dl := p2-p1, (lon2-lon1)*rad
	h := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	// Rounding can push h a hair above 1 for antipodes; Asin would return NaN.
	return 2 * earthRadius * math.Asin(math.Sqrt(math.Min(1, h)))
}
