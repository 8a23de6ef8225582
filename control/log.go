package control

import stdlog "log"

// Logger is where control's log lines go: plugin/ hands over CoreDNS's logger of the gtm
// plugin (SetLog), so lines read "[INFO] plugin/gtm: ..." and Debugf follows the debug
// plugin.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warningf(format string, args ...any)
	Errorf(format string, args ...any)
}

// log is the process's logger of control, set once before any block starts.
var log Logger = stdLogger{}

// SetLog makes l control's logger. Call it once, before the first block starts.
func SetLog(l Logger) { log = l }

// stdLogger writes CoreDNS's format through the standard logger (control's tests).
type stdLogger struct{}

func (stdLogger) Debugf(string, ...any)          {}
func (stdLogger) Infof(f string, args ...any)    { stdlog.Printf("[INFO] plugin/gtm: "+f, args...) }
func (stdLogger) Warningf(f string, args ...any) { stdlog.Printf("[WARNING] plugin/gtm: "+f, args...) }
func (stdLogger) Errorf(f string, args ...any)   { stdlog.Printf("[ERROR] plugin/gtm: "+f, args...) }
