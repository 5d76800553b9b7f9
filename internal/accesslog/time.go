package accesslog

import (
	"fmt"
	"strconv"
	"time"
)

// timeFormat is a compiled %START_TIME(...)% format: the strftime subset Envoy accepts
// (absl::FormatTime), rendered in UTC as Envoy does.
type timeFormat struct {
	items []timeItem
}

type timeVerb uint8

const (
	tLiteral        timeVerb = iota
	tYear                    // %Y
	tYear2                   // %y
	tMonth                   // %m
	tDay                     // %d
	tDaySpace                // %e
	tHour                    // %H
	tHour12                  // %I
	tMinute                  // %M
	tSecond                  // %S
	tAMPM                    // %p
	tYearDay                 // %j
	tWeekdayShort            // %a
	tWeekdayLong             // %A
	tMonthShort              // %b, %h
	tMonthLong               // %B
	tZoneName                // %Z
	tZoneOffset              // %z
	tEpoch                   // %s
	tFraction                // %f, %Nf: N fractional digits
	tSecondFraction          // %ENS: seconds with N fractional digits; %E*S: as many as needed
)

type timeItem struct {
	verb   timeVerb
	digits int    // for fractions; -1 means "as many as needed"
	text   string // literal
}

// defaultTimeFormat is Envoy's %START_TIME%: ISO 8601 with milliseconds, UTC.
var defaultTimeFormat = mustTime("%Y-%m-%dT%H:%M:%E3SZ")

func mustTime(f string) *timeFormat {
	tf, err := compileTime(f)
	if err != nil {
		panic(err)
	}
	return tf
}

func compileTime(f string) (*timeFormat, error) {
	tf := &timeFormat{}
	lit := []byte{}
	flush := func() {
		if len(lit) > 0 {
			tf.items = append(tf.items, timeItem{verb: tLiteral, text: string(lit)})
			lit = lit[:0]
		}
	}
	add := func(v timeVerb, digits int) {
		flush()
		tf.items = append(tf.items, timeItem{verb: v, digits: digits})
	}
	// addJoined adds a composite specifier (%T, %F, …): its parts with sep between them.
	addJoined := func(sep byte, verbs ...timeVerb) {
		for j, v := range verbs {
			if j > 0 {
				lit = append(lit, sep)
			}
			add(v, 0)
		}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			lit = append(lit, c)
			continue
		}
		i++
		if i >= len(f) {
			return nil, fmt.Errorf("trailing %%")
		}
		switch f[i] {
		case '%':
			lit = append(lit, '%')
		case 'n':
			lit = append(lit, '\n')
		case 't':
			lit = append(lit, '\t')
		case 'Y':
			add(tYear, 0)
		case 'y':
			add(tYear2, 0)
		case 'm':
			add(tMonth, 0)
		case 'd':
			add(tDay, 0)
		case 'e':
			add(tDaySpace, 0)
		case 'H':
			add(tHour, 0)
		case 'I':
			add(tHour12, 0)
		case 'M':
			add(tMinute, 0)
		case 'S':
			add(tSecond, 0)
		case 'p':
			add(tAMPM, 0)
		case 'j':
			add(tYearDay, 0)
		case 'a':
			add(tWeekdayShort, 0)
		case 'A':
			add(tWeekdayLong, 0)
		case 'b', 'h':
			add(tMonthShort, 0)
		case 'B':
			add(tMonthLong, 0)
		case 'Z':
			add(tZoneName, 0)
		case 'z':
			add(tZoneOffset, 0)
		case 's':
			add(tEpoch, 0)
		case 'f':
			add(tFraction, 9)
		case 'T':
			addJoined(':', tHour, tMinute, tSecond)
		case 'R':
			addJoined(':', tHour, tMinute)
		case 'F':
			addJoined('-', tYear, tMonth, tDay)
		case 'D':
			addJoined('/', tMonth, tDay, tYear2)
		case '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i+1 >= len(f) || f[i+1] != 'f' {
				return nil, fmt.Errorf("%%%c: expected %%%cf", f[i], f[i])
			}
			add(tFraction, int(f[i]-'0'))
			i++
		case 'E':
			// %E<N>S and %E*S: seconds with fractional digits (absl).
			if i+2 < len(f) && f[i+2] == 'S' {
				switch d := f[i+1]; {
				case d >= '1' && d <= '9':
					add(tSecondFraction, int(d-'0'))
					i += 2
					continue
				case d == '*':
					add(tSecondFraction, -1)
					i += 2
					continue
				}
			}
			return nil, fmt.Errorf("unsupported %%E specifier at %q", f[i-1:])
		default:
			return nil, fmt.Errorf("unsupported specifier %%%c", f[i])
		}
	}
	flush()
	return tf, nil
}

var (
	weekdays = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months   = [...]string{"January", "February", "March", "April", "May", "June", "July", "August",
		"September", "October", "November", "December"}
)

func (tf *timeFormat) append(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	for _, it := range tf.items {
		switch it.verb {
		case tLiteral:
			b = append(b, it.text...)
		case tYear:
			b = appendPadded(b, year, 4)
		case tYear2:
			b = appendPadded(b, year%100, 2)
		case tMonth:
			b = appendPadded(b, int(month), 2)
		case tDay:
			b = appendPadded(b, day, 2)
		case tDaySpace:
			if day < 10 {
				b = append(b, ' ')
			}
			b = strconv.AppendInt(b, int64(day), 10)
		case tHour:
			b = appendPadded(b, hour, 2)
		case tHour12:
			h := hour % 12
			if h == 0 {
				h = 12
			}
			b = appendPadded(b, h, 2)
		case tMinute:
			b = appendPadded(b, min, 2)
		case tSecond:
			b = appendPadded(b, sec, 2)
		case tAMPM:
			if hour < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case tYearDay:
			b = appendPadded(b, t.YearDay(), 3)
		case tWeekdayShort:
			b = append(b, weekdays[t.Weekday()][:3]...)
		case tWeekdayLong:
			b = append(b, weekdays[t.Weekday()]...)
		case tMonthShort:
			b = append(b, months[month-1][:3]...)
		case tMonthLong:
			b = append(b, months[month-1]...)
		case tZoneName:
			b = append(b, "UTC"...)
		case tZoneOffset:
			b = append(b, "+0000"...)
		case tEpoch:
			b = strconv.AppendInt(b, t.Unix(), 10)
		case tFraction:
			b = appendFraction(b, t.Nanosecond(), it.digits)
		case tSecondFraction:
			b = appendPadded(b, sec, 2)
			ns := t.Nanosecond()
			if it.digits < 0 {
				if ns == 0 {
					continue
				}
				digits := 9
				for ns%10 == 0 {
					ns /= 10
					digits--
				}
				b = append(b, '.')
				b = appendPadded(b, ns, digits)
				continue
			}
			b = append(b, '.')
			b = appendFraction(b, ns, it.digits)
		}
	}
	return b
}

// appendFraction appends the first digits digits of a nanosecond count (truncated).
func appendFraction(b []byte, ns, digits int) []byte {
	for i := digits; i < 9; i++ {
		ns /= 10
	}
	return appendPadded(b, ns, digits)
}

func appendPadded(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i == len(tmp) {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	for len(tmp)-i < width {
		i--
		tmp[i] = '0'
	}
	return append(b, tmp[i:]...)
}
