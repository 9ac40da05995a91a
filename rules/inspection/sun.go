package inspection

import (
	"math"
	"time"
)

// SunElevation is the sun's elevation above the horizon in degrees at t
// for a place at lat, lon (decimal degrees, east positive), by NOAA's
// "General Solar Position Calculations" (NOAA Global Monitoring Division):
// fractional year γ, equation of time and declination by Fourier series,
// true solar time, hour angle, then the solar zenith. Accurate to about a
// minute of sunrise/sunset at the latitudes of Chinese cities, which is all
// a lighting check needs; refraction is left to the threshold (-0.833° is
// the conventional sunset).
func SunElevation(t time.Time, lat, lon float64) float64 {
	u := t.UTC()
	days := 365.0
	if y := u.Year(); y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 366
	}
	hour := float64(u.Hour()) + float64(u.Minute())/60 + float64(u.Second())/3600
	g := 2 * math.Pi / days * (float64(u.YearDay()-1) + (hour-12)/24)
	eqtime := 229.18 * (0.000075 + 0.001868*math.Cos(g) - 0.032077*math.Sin(g) - 0.014615*math.Cos(2*g) - 0.040849*math.Sin(2*g))
	decl := 0.006918 - 0.399912*math.Cos(g) + 0.070257*math.Sin(g) - 0.006758*math.Cos(2*g) + 0.000907*math.Sin(2*g) -
		0.002697*math.Cos(3*g) + 0.00148*math.Sin(3*g)
	tst := hour*60 + eqtime + 4*lon // true solar time, minutes
	ha := (tst/4 - 180) * math.Pi / 180
	phi := lat * math.Pi / 180
	cz := math.Sin(phi)*math.Sin(decl) + math.Cos(phi)*math.Cos(decl)*math.Cos(ha)
	cz = math.Max(-1, math.Min(1, cz))
	return 90 - math.Acos(cz)*180/math.Pi
}
