// Package readmetest keeps the README's walkthroughs true. Its test
// applies the snippets of "Adding a fault" verbatim to a copy of the
// module and runs the section's commands there, as a reader would. It
// holds no code of its own.
package readmetest
