module github.com/nodereboot/nodereboot

go 1.26.0
