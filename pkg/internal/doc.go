// Package internal holds the checks of the tree's own shape (its tests):
// the length limits of files and functions under pkg/.
package internal
