from realtime_proxy.commands.cli import main

raise SystemExit(main())
