module github.com/syncord/syncord

go 1.26.8
