// The Sessions page's player: asciinema-player on the session's .cast file.
(function () {
  var element = document.getElementById("player");
  if (element && window.AsciinemaPlayer) {
    window.sessionPlayer = AsciinemaPlayer.create(element.dataset.cast, element,
      {fit: "width", idleTimeLimit: 2, preload: true});
  }
})();
